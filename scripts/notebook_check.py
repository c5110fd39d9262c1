"""Run the example notebook, render it to HTML and look at it in headless Chromium.

    python scripts/notebook_check.py [--out build/notebook]

Executes ``examples/dashboard.ipynb`` (nbclient, the current interpreter's kernel),
writes the executed notebook and its HTML (nbconvert) under ``--out``, loads the page in
Debian's headless ``chromium``, checks that the rendered page shows the dashboard's KPI
cards and the tables, and keeps a full-page screenshot (``dashboard.png``). With
``--pictures DIR`` it also writes one picture per rich output (``notebook-<n>.png``) for
docs/notebooks.md. Exits non-zero, saying why, when a cell errors or the page lacks them.
The test suite (tests/test_notebook.py) calls the same functions.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "dashboard.ipynb"
#: What the rendered page must show: the dashboard's KPI cards (Members, Retention %,
#: Total Revenue) and tables (the series, the feed, the lists).
CARD = "smilepass-card"
TABLE = "smilepass-table"
MIN_CARDS = 3
MIN_TABLES = 4
MIN_CHARTS = 2
#: Browser flags for a container running as root with no screen.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
    "--allow-file-access-from-files",
)


def chromium() -> str | None:
    """The path of a Chromium on this machine, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def execute(path: Path = NOTEBOOK, timeout: int = 300) -> Any:
    """The notebook at ``path``, executed in a fresh kernel of this interpreter.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the error names the cell).
    """
    import nbformat
    from nbclient import NotebookClient

    read: Any = nbformat.read  # untyped
    notebook = read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def to_html(notebook: Any) -> str:
    """The executed notebook as one HTML page (nbconvert's lab template)."""
    from nbconvert import HTMLExporter

    exporter: Any = HTMLExporter  # untyped
    body, _ = exporter(template_name="lab").from_notebook_node(notebook)
    return str(body)


def _run_browser(args: list[str], timeout: int = 120) -> str:
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def rendered_dom(page: Path, *, width: int = 1280) -> str:
    """The DOM Chromium builds for ``page`` in a window ``width`` pixels wide (after layout
    and any script ran)."""
    return _run_browser(
        [
            f"--window-size={width},1000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
    )


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 8000) -> Path:
    """A screenshot of ``page`` at ``width`` x ``height``, trimmed of the blank bottom."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run_browser(
        [
            f"--window-size={width},{height}",
            "--virtual-time-budget=5000",
            f"--screenshot={png}",
            page.as_uri(),
        ]
    )
    _trim(png)
    return png


def _trim(png: Path, margin: int = 16) -> None:
    """Crop the uniform background around the content (Pillow comes with matplotlib)."""
    from PIL import Image, ImageChops

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    box = ImageChops.difference(rgb, background).getbbox()
    if box is None:
        return
    left, top, right, bottom = box
    crop = (
        max(0, left - margin),
        max(0, top - margin),
        min(rgb.width, right + margin),
        min(rgb.height, bottom + margin),
    )
    rgb.crop(crop).save(png)


def missing_from(dom: str) -> list[str]:
    """What the rendered page lacks of the cards and tables (empty when all are there)."""
    problems = []
    cards = len(re.findall(rf'class="[^"]*\b{CARD}\b', dom))
    tables = len(re.findall(rf'class="[^"]*\b{TABLE}\b', dom))
    if cards < MIN_CARDS:
        problems.append(f"{cards} KPI cards ({CARD}), expected at least {MIN_CARDS}")
    if tables < MIN_TABLES:
        problems.append(f"{tables} tables ({TABLE}), expected at least {MIN_TABLES}")
    if "Traceback" in dom or 'data-mime-type="application/vnd.jupyter.stderr"' in dom:
        problems.append("an error or a traceback is on the page")
    return problems


#: Injected into a copy of the page (never into the library's HTML): after load it writes
#: where the browser laid out the cards, tables and images into ``<pre id=PROBE>``.
PROBE = "smilepass-probe"
_PROBE_SCRIPT = """<script>
window.addEventListener("load", function () {
  function box(e) {
    var r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return {x: r.left, y: r.top + window.scrollY, w: r.width, h: r.height,
            shown: s.display !== "none" && s.visibility !== "hidden" && r.width > 0 && r.height > 0,
            border: s.borderTopWidth};
  }
  function all(selector) { return [].map.call(document.querySelectorAll(selector), box); }
  var images = [].map.call(document.querySelectorAll("img"), function (i) {
    var b = box(i); b.loaded = i.complete && i.naturalWidth > 0; return b;
  });
  var out = {cards: all("." + "%(card)s"), tables: all("table.%(table)s"), images: images};
  var pre = document.createElement("pre");
  pre.id = "%(probe)s";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def layout(page: Path) -> dict[str, list[dict[str, Any]]]:
    """Where Chromium laid out ``page``'s KPI cards, tables and images: for each, its box
    (``x``, ``y``, ``w``, ``h``), whether it is shown, its top border (the inline CSS at
    work) and, for images, whether they loaded."""
    script = _PROBE_SCRIPT % {"card": CARD, "table": TABLE, "probe": PROBE}
    text = page.read_text(encoding="utf-8")
    probed = page.with_name(page.stem + ".probe.html")
    cut = text.rfind("</body>")
    probed.write_text(
        text[:cut] + script + text[cut:] if cut >= 0 else text + script, encoding="utf-8"
    )
    dom = rendered_dom(probed)
    found = re.search(rf'<pre id="{PROBE}">(.*?)</pre>', dom, re.DOTALL)
    if found is None:
        raise RuntimeError("the layout probe did not run in the page")
    result: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(found.group(1)))
    return result


def layout_problems(boxes: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What is wrong with the laid-out page (empty when the cards stand side by side,
    styled and visible, the tables show rows and the charts loaded)."""
    problems = []
    cards = [c for c in boxes["cards"] if c["shown"]]
    if len(cards) < MIN_CARDS:
        problems.append(f"{len(cards)} KPI cards shown, expected at least {MIN_CARDS}")
    else:
        first = cards[:MIN_CARDS]
        if any(c["w"] < 120 or c["h"] < 60 for c in first):
            problems.append(f"KPI cards too small to read: {[(c['w'], c['h']) for c in first]}")
        if any(abs(c["y"] - first[0]["y"]) > 2 for c in first):
            problems.append("the KPI cards are not side by side")
        elif any(b["x"] < a["x"] + a["w"] for a, b in itertools.pairwise(first)):
            problems.append("the KPI cards overlap")
        if any(c["border"] in ("", "0px") for c in first):
            problems.append("the KPI cards have no border: the inline CSS did not apply")
    tables = [t for t in boxes["tables"] if t["shown"] and t["h"] > 20]
    if len(tables) < MIN_TABLES:
        problems.append(f"{len(tables)} tables shown, expected at least {MIN_TABLES}")
    charts = [i for i in boxes["images"] if i.get("loaded") and i["shown"]]
    if len(charts) < MIN_CHARTS:
        problems.append(f"{len(charts)} charts shown, expected at least {MIN_CHARTS}")
    return problems


def rich_outputs(notebook: Any) -> list[tuple[int, str, str]]:
    """Each cell's rich outputs, in order: ``(cell index, mime type, data)`` for HTML and
    PNG outputs."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for mime in ("text/html", "image/png"):
                if mime in data:
                    found.append((index, mime, str(data[mime])))
                    break
    return found


def pictures(notebook: Any, directory: Path, *, width: int = 1400) -> list[Path]:
    """One trimmed picture per rich output, ``notebook-<cell>.png``, for the docs."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, mime, data in rich_outputs(notebook):
            if mime == "text/html":
                content = data
            else:
                content = f'<img alt="cell {index}" src="data:image/png;base64,{data.strip()}">'
            page = Path(scratch) / f"cell-{index}.html"
            page.write_text(
                "<!doctype html><html><head><meta charset='utf-8'>"
                f"<title>{html.escape(NOTEBOOK.name)} cell {index}</title>"
                "<style>body{margin:16px;background:#fff;font-family:sans-serif}</style>"
                f"</head><body>{content}</body></html>",
                encoding="utf-8",
            )
            written.append(
                screenshot(page, directory / f"notebook-{index}.png", width=width, height=2400)
            )
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "notebook")
    parser.add_argument("--pictures", type=Path, help="also write one picture per output here")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    notebook = execute()
    args.out.mkdir(parents=True, exist_ok=True)
    import nbformat

    write: Any = nbformat.write  # untyped
    write(notebook, args.out / "dashboard.ipynb")
    page = args.out / "dashboard.html"
    page.write_text(to_html(notebook), encoding="utf-8")
    problems = missing_from(rendered_dom(page)) + layout_problems(layout(page))
    shot = screenshot(page, args.out / "dashboard.png")
    print(f"executed {NOTEBOOK.relative_to(ROOT)}; page {page}; screenshot {shot}")
    if args.pictures:
        for picture in pictures(notebook, args.pictures):
            print(f"picture {picture}")
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

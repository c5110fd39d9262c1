"""Tests for examples/dashboard.ipynb: every cell runs, and the rendered page shows the
dashboard's KPI cards and tables in a real browser (headless Chromium).

Chromium is a Debian package that .ci/run installs. Outside CI a machine without it skips
the browser test, saying so; under CI (``CI`` set) its absence is a failure.
"""

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("notebook_check", ROOT / "scripts/notebook_check.py")
assert _spec is not None
assert _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
sys.modules["notebook_check"] = check
_spec.loader.exec_module(check)

#: Where the executed notebook, its page and the screenshot are kept.
BUILD = ROOT / "build" / "notebook"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed() -> Any:
    return check.execute()


def _browser() -> None:
    if check.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but there is no chromium on PATH (.ci/run installs it)")
        pytest.skip("no chromium on PATH: install Debian's chromium to run the browser check")


class TestExampleNotebook:
    """The example notebook runs top to bottom and shows what it promises."""

    def test_every_cell_runs_and_shows_its_result(self, executed: Any) -> None:
        """No cell errors, and the dashboard's cards, the tables and the charts are among
        the outputs."""
        errors = [
            o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"
        ]
        assert errors == []
        outputs = check.rich_outputs(executed)
        html = "".join(data for _, mime, data in outputs if mime == "text/html")
        assert html.count(f'class="{check.CARD}') >= check.MIN_CARDS
        assert html.count(check.TABLE) >= check.MIN_TABLES
        assert sum(mime == "image/png" for _, mime, _ in outputs) >= 2
        assert "<script" not in html.lower()

    def test_the_page_shows_cards_and_tables_in_a_browser(self, executed: Any) -> None:
        """In Chromium the converted page shows the three KPI cards side by side, styled by
        the inline CSS, the tables with rows and the two charts loaded; a non-blank
        screenshot is kept under build/notebook/."""
        _browser()
        BUILD.mkdir(parents=True, exist_ok=True)
        page = BUILD / "dashboard.html"
        page.write_text(check.to_html(executed), encoding="utf-8")
        assert check.missing_from(check.rendered_dom(page)) == []
        assert check.layout_problems(check.layout(page)) == []
        shot = check.screenshot(page, BUILD / "dashboard.png")
        from PIL import Image

        with Image.open(shot) as image:
            assert image.width >= 600
            assert image.height >= 1000
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 50  # more than a blank page

    def test_missing_parts_are_named(self) -> None:
        """The page check names what a page lacks: a page without cards or tables fails."""
        assert check.missing_from("<html><body><p>nothing</p></body></html>") == [
            f"0 KPI cards ({check.CARD}), expected at least {check.MIN_CARDS}",
            f"0 tables ({check.TABLE}), expected at least {check.MIN_TABLES}",
        ]
        assert "an error or a traceback is on the page" in check.missing_from("Traceback (most")


class TestLayoutCheck:
    """The browser check fails on a page that has the markup but does not show it."""

    CARD = '<div class="smilepass-card" style="{style}">Members<br>138<br>Previous 137</div>'
    TABLE = '<table class="smilepass-table"><tr><td>a</td></tr><tr><td>b</td></tr></table>'

    def _page(self, tmp_path: Path, card_style: str, *, charts: int = 2) -> Path:
        cards = "".join(self.CARD.format(style=card_style) for _ in range(3))
        pixel = (  # a 1x1 PNG
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
            "AAAABJRU5ErkJggg=="
        )
        images = f'<img src="data:image/png;base64,{pixel}" width="50" height="50">' * charts
        page = tmp_path / "page.html"
        page.write_text(
            f"<html><body><div style='display:flex'>{cards}</div>{self.TABLE * 4}{images}"
            "</body></html>"
        )
        return page

    def test_a_good_page_passes_and_each_fault_is_named(self, tmp_path: Path) -> None:
        """Styled cards side by side pass; hidden cards, cards without the CSS, stacked
        cards and missing charts are each reported."""
        _browser()
        good = "border:1px solid #ccc;width:200px;height:100px;margin:4px"
        assert check.layout_problems(check.layout(self._page(tmp_path, good))) == []
        hidden = check.layout_problems(check.layout(self._page(tmp_path, good + ";display:none")))
        assert hidden[0] == "0 KPI cards shown, expected at least 3"
        bare = check.layout_problems(check.layout(self._page(tmp_path, "width:200px;height:100px")))
        assert bare == ["the KPI cards have no border: the inline CSS did not apply"]
        stacked = good + ";flex-basis:100%"
        page = self._page(tmp_path, stacked).read_text().replace("display:flex", "display:block")
        (tmp_path / "page.html").write_text(page)
        assert "the KPI cards are not side by side" in check.layout_problems(
            check.layout(tmp_path / "page.html")
        )
        no_charts = check.layout_problems(check.layout(self._page(tmp_path, good, charts=0)))
        assert no_charts == ["0 charts shown, expected at least 2"]


class TestNotebookDocs:
    """docs/notebooks.md shows pictures that exist, taken from the executed notebook."""

    def test_every_picture_the_page_names_exists(self) -> None:
        """Each image docs/notebooks.md links is a file in docs/images/."""
        import re

        text = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert any("notebook-" in link for link in links)
        missing = [link for link in links if not (ROOT / "docs" / link).is_file()]
        assert missing == []

"""Imports point one way: the core never imports the outer layer (record files, rendering,
demo, SQL, CLI, frames, charts) nor the test instruments."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "smilepass_core"
CORE = ["money", "periods", "errors", "presentation", "domain", "queries", "repositories"]
CORE += ["memory", "kpi", "reports", "subscriptions"]
OUTER = {"demo", "records", "rendering", "io", "sql", "cli", "__main__", "notebook", "frames"}
OUTER |= {"plot", "plots", "html", "adapters", "testing", "_compat"}


def _modules() -> dict[str, Path]:
    found = {}
    for name in CORE:
        single = PACKAGE / f"{name}.py"
        paths = [single] if single.exists() else sorted((PACKAGE / name).rglob("*.py"))
        for path in paths:
            module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
            found[module.removesuffix(".__init__")] = path
    return found


def _package(module: str, path: Path) -> str:
    """The package a core module's relative imports start from."""
    dotted = f"smilepass_core.{module}"
    return dotted if path.name == "__init__.py" else dotted.rsplit(".", 1)[0]


def _imported(path: Path, package: str = "smilepass_core") -> set[str]:
    """The smilepass_core modules ``path`` imports, anywhere in it (functions included);
    a relative import is resolved against ``package``, the module's own package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or node.level):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {n.split(".", 2)[1] for n in names if n.startswith("smilepass_core.")}


class TestImportDirection:
    """The core's imports of the outer layer are exactly the known ones."""

    def test_every_core_module_is_found(self) -> None:
        """Each core module or package exists, so the check below reads real files."""
        modules = _modules()
        assert {m.split(".")[0] for m in modules} == set(CORE)
        assert len(modules) > len(CORE)

    def test_the_core_imports_nothing_of_the_outer_layer(self) -> None:
        """No core module imports record files, rendering, the demo, frames, adapters,
        the deprecated forwards or testing."""
        edges = {
            (module, target)
            for module, path in _modules().items()
            for target in _imported(path, _package(module, path)) & OUTER
        }
        assert edges == set()

    def test_the_parser_sees_imports_inside_functions(self, tmp_path: Path) -> None:
        """An import inside a function counts: laziness does not reverse a layer."""
        module = tmp_path / "lazy.py"
        module.write_text("def f():\n    from smilepass_core.demo import load_demo\n")
        assert _imported(module) == {"demo"}

    def test_the_parser_resolves_relative_imports(self, tmp_path: Path) -> None:
        """``from ..io import html`` inside ``smilepass_core.reports`` counts as ``io``."""
        module = tmp_path / "relative.py"
        module.write_text("from ..io import html\nfrom . import _table\nfrom .. import demo\n")
        assert _imported(module, "smilepass_core.reports") == {"io", "reports", "demo"}

    def test_the_parser_sees_every_import_form(self, tmp_path: Path) -> None:
        """``import a.b``, ``from a import b`` and ``from a.b import c`` all count."""
        module = tmp_path / "forms.py"
        module.write_text(
            "import smilepass_core.io.text\n"
            "from smilepass_core import demo\n"
            "from smilepass_core.testing.strategies import members\n"
            "import attrs\n"
        )
        assert _imported(module) == {"io", "demo", "testing"}

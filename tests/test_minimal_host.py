"""The minimal host store shipped in smilepass_core.testing.minimal honours the whole kit."""

from pathlib import Path

from smilepass_core.testing import contracts, minimal

PAGE = Path(__file__).resolve().parent.parent / "docs" / "repositories.md"
START, END = b"<!-- minimal-host:start -->", b"<!-- minimal-host:end -->"


class TestMinimalStore(contracts.StoreContract):
    """The minimal host honours the contract: every repository, the dashboard, random steps."""

    def make_store(self) -> minimal.MinimalStore:
        return minimal.MinimalStore()


class TestTheDocsPage:
    """docs/repositories.md cannot drift from the shipped module."""

    def test_page_shows_the_module_byte_for_byte(self) -> None:
        """The page's block between the minimal-host markers is the module's source, fenced."""
        page = PAGE.read_bytes()
        assert page.count(START) == 1
        assert page.count(END) == 1
        block = page.split(START)[1].split(END)[0]
        assert block == b"\n```python\n" + Path(minimal.__file__).read_bytes() + b"```\n"

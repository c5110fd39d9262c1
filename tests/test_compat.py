"""Tests for the names that moved to the outer layer: each still works, with a warning
that names its new home, and gives what the new name gives."""

import importlib

import pytest

from smilepass_core import InMemoryStore, InvalidRecord, dashboard
from smilepass_core._compat import MOVED_METHODS, MOVED_MODULES
from smilepass_core.demo import DEMO_NOW, demo_store, load_demo
from smilepass_core.io import records, text
from smilepass_core.presentation import provide, provider
from smilepass_core.reports import weekly_check

STORE = demo_store()
BOARD = dashboard(STORE, practices="syd", now=DEMO_NOW)


def _counts(store: InMemoryStore) -> dict[str, int]:
    return {name: len(getattr(store, name)) for name in ("practices", "members")}


class TestMovedMethods:
    """Each moved method forwards to its outer-layer function, warning once per call."""

    def test_every_moved_method_is_installed(self) -> None:
        """The package put a forward on each class for each moved name."""
        for (kind, name), (_, new) in MOVED_METHODS.items():
            assert callable(getattr(kind, name)), (kind, name)
            assert new.startswith("smilepass_core.")

    def test_dashboard_render(self) -> None:
        """``Dashboard.render()`` is ``io.text.render_dashboard(board)``."""
        with pytest.warns(DeprecationWarning, match=r"io\.text\.render_dashboard"):
            assert BOARD.render() == text.render_dashboard(BOARD)  # type: ignore[attr-defined]

    def test_weekly_check_render(self) -> None:
        """``WeeklyCheck.render()`` is ``io.text.render_weekly(check)``."""
        check = weekly_check(STORE, now=DEMO_NOW, practices="syd")
        with pytest.warns(DeprecationWarning, match=r"io\.text\.render_weekly"):
            assert check.render() == text.render_weekly(check)  # type: ignore[attr-defined]

    @pytest.mark.parametrize("now", [None, DEMO_NOW])
    def test_from_demo(self, now: object) -> None:
        """``InMemoryStore.from_demo(now)`` is ``demo.demo_store(now)``; None meant DEMO_NOW."""
        with pytest.warns(DeprecationWarning, match=r"demo\.demo_store"):
            store = InMemoryStore.from_demo(now)  # type: ignore[attr-defined]
        assert _counts(store) == _counts(STORE)

    def test_from_records_and_load_records(self) -> None:
        """``InMemoryStore.from_records`` and ``store.load_records`` are the io.records
        functions, and a load still fails as a whole."""
        tables = records.to_records(load_demo().for_practice("nyc").objects())
        with pytest.warns(DeprecationWarning, match=r"io\.records\.store_from_records"):
            built = InMemoryStore.from_records(tables)  # type: ignore[attr-defined]
        assert _counts(built) == {"practices": 1, "members": len(tables["members"])}
        empty = InMemoryStore()
        with pytest.warns(DeprecationWarning, match=r"io\.records\.load_records"):
            empty.load_records(tables)  # type: ignore[attr-defined]
        assert _counts(empty) == _counts(built)
        broken = {**tables, "members": [*tables["members"], {"id": "m-broken"}]}
        other = InMemoryStore()
        with (
            pytest.warns(DeprecationWarning, match="load_records"),
            pytest.raises(InvalidRecord, match=r"members\[\d+\]"),
        ):
            other.load_records(broken)  # type: ignore[attr-defined]
        assert _counts(other) == {"practices": 0, "members": 0}

    def test_a_subclass_keeps_its_class(self) -> None:
        """``Sub.from_demo()`` and ``Sub.from_records()`` build a ``Sub``, as before."""

        class Sub(InMemoryStore):
            pass

        tables = records.to_records(load_demo().for_practice("nyc").objects())
        with pytest.warns(DeprecationWarning, match="from_demo"):
            demo = Sub.from_demo()  # type: ignore[attr-defined]
        with pytest.warns(DeprecationWarning, match="from_records"):
            built = Sub.from_records(tables)  # type: ignore[attr-defined]
        assert (type(demo), type(built)) == (Sub, Sub)


class TestMovedModules:
    """``smilepass_core.records`` and ``.rendering`` forward each name to their new module."""

    @pytest.mark.parametrize(("old", "new"), sorted(MOVED_MODULES.items()))
    def test_each_public_name_forwards(self, old: str, new: str) -> None:
        """Every name of the new module is reachable from the old one, with a warning."""
        old_module, new_module = importlib.import_module(old), importlib.import_module(new)
        for name in new_module.__all__:
            with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
                assert getattr(old_module, name) is getattr(new_module, name)

    @pytest.mark.parametrize(("old", "new"), sorted(MOVED_MODULES.items()))
    def test_star_import_still_brings_every_name(self, old: str, new: str) -> None:
        """``from smilepass_core.records import *`` brings the new module's names."""
        namespace: dict[str, object] = {}
        with pytest.warns(DeprecationWarning, match=f"{old}.* moved to {new}"):
            exec(f"from {old} import *", namespace)
        new_module = importlib.import_module(new)
        assert {n: namespace[n] for n in new_module.__all__} == {
            n: getattr(new_module, n) for n in new_module.__all__
        }

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        """A name the new module lacks is an AttributeError naming the old module."""
        old = importlib.import_module("smilepass_core.rendering")
        with pytest.raises(AttributeError, match=r"'smilepass_core\.rendering' has no attribute"):
            old.no_such_name  # noqa: B018


class TestPresentation:
    """The core's results ask the outer layer through a registry of capabilities."""

    def test_an_unknown_capability_is_refused(self) -> None:
        """Registering a misspelt capability fails at once, listing the known ones."""
        with pytest.raises(ValueError, match="known: html, arrow, pandas, polars"):
            provide("htlm", str)

    def test_a_missing_provider_names_what_is_missing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With nothing registered, the error names the capability and where it lives."""
        from smilepass_core import presentation

        monkeypatch.setattr(presentation, "_PROVIDED", {})
        with pytest.raises(presentation.SmilepassError, match=r"'arrow'.*\[arrow\]"):
            provider("arrow")

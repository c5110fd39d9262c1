"""Names that moved to the outer layer, kept working with a ``DeprecationWarning``.

The core never imports the outer layer, so the old methods cannot live on the core's
classes; the package installs them here, on import, as forwards to their new homes.
Each goes in 1.0.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any, Final

from smilepass_core.demo import DEMO_NOW, load_demo
from smilepass_core.io.records import load_records
from smilepass_core.io.text import render_dashboard, render_weekly
from smilepass_core.kpi import Dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.reports.weekly import WeeklyCheck

__all__ = ["MOVED_METHODS", "MOVED_MODULES", "install", "module_getattr"]


def _from_demo(cls: type[InMemoryStore], now: datetime | None = None) -> InMemoryStore:
    """A new store of ``cls`` holding the bundled demo dataset (``None``: for ``DEMO_NOW``)."""
    return cls.from_objects(load_demo(DEMO_NOW if now is None else now).objects())


def _from_records(
    cls: type[InMemoryStore], tables: Any, *, unknown_columns: str = "error"
) -> InMemoryStore:
    """A new store of ``cls`` holding the parsed ``tables``."""
    store = cls()
    load_records(store, tables, unknown_columns=unknown_columns)
    return store


#: ``(class, method name) -> (function, its new name)``: methods now outer-layer functions.
MOVED_METHODS: Final[dict[tuple[type, str], tuple[Callable[..., Any], str]]] = {
    (InMemoryStore, "from_demo"): (_from_demo, "smilepass_core.demo.demo_store(now)"),
    (InMemoryStore, "from_records"): (
        _from_records,
        "smilepass_core.io.records.store_from_records(tables)",
    ),
    (InMemoryStore, "load_records"): (
        load_records,
        "smilepass_core.io.records.load_records(store, tables)",
    ),
    (Dashboard, "render"): (render_dashboard, "smilepass_core.io.text.render_dashboard(board)"),
    (WeeklyCheck, "render"): (render_weekly, "smilepass_core.io.text.render_weekly(check)"),
}

#: Old module -> its new home (the old module forwards every name, with a warning).
MOVED_MODULES: Final = {
    "smilepass_core.records": "smilepass_core.io.records",
    "smilepass_core.rendering": "smilepass_core.io.text",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; the old name goes in smilepass_core 1.0",
        DeprecationWarning,
        stacklevel=3,
    )


def _forward(kind: type, name: str, function: Callable[..., Any], new: str) -> Any:
    old = f"{kind.__name__}.{name}"
    if name.startswith("from_"):

        @functools.wraps(function)
        def classmethod_forward(cls: type, *args: Any, **kwargs: Any) -> Any:
            _warn(old, new)
            return function(cls, *args, **kwargs)

        return classmethod(classmethod_forward)

    @functools.wraps(function)
    def method_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        _warn(old, new)
        return function(self, *args, **kwargs)

    return method_forward


def install() -> None:
    """Put the moved methods back on their classes as deprecated forwards."""
    for (kind, name), (function, new) in MOVED_METHODS.items():
        setattr(kind, name, _forward(kind, name, function, new))


def module_getattr(old: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the moved module ``old``: each name, with a warning."""
    new = MOVED_MODULES[old]

    def __getattr__(name: str) -> Any:
        target: ModuleType = importlib.import_module(new)
        try:
            value = getattr(target, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        _warn(f"{old}.{name}", f"{new}.{name}")
        return value

    return __getattr__

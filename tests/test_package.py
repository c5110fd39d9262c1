"""Tests for the package's top level: its version and its public names."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import smilepass_core
from smilepass_core import _version

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_installed_distributions() -> None:
    """``__version__`` is the installed distribution's version, which is ``_version.py``'s."""
    assert smilepass_core.__version__ == version("smilepass-core")
    assert smilepass_core.__version__ == _version.__version__


def test_version_is_read_from_the_file_pyproject_names() -> None:
    """The build takes the version from the file ``__version__`` falls back to."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/smilepass_core/_version.py"


def test_an_unknown_attribute_raises_attribute_error_naming_it() -> None:
    """A missing name raises AttributeError with Python's own wording, so ``hasattr`` works."""
    message = "module 'smilepass_core' has no attribute 'Invoice'"
    with pytest.raises(AttributeError, match=f"^{re.escape(message)}$"):
        _ = smilepass_core.Invoice
    assert not hasattr(smilepass_core, "__no_such_name__")


def test_every_public_name_resolves() -> None:
    """Each name in ``__all__`` is an attribute of the package, and ``__all__`` has no repeats."""
    assert len(set(smilepass_core.__all__)) == len(smilepass_core.__all__)
    for name in smilepass_core.__all__:
        assert getattr(smilepass_core, name) is not None, name

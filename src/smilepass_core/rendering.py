"""Moved to :mod:`smilepass_core.io.text`; every name here forwards there with a
``DeprecationWarning`` and goes in 1.0."""

from smilepass_core._compat import module_getattr

__getattr__ = module_getattr("smilepass_core.rendering")

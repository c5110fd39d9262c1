"""Moved to :mod:`smilepass_core.io.records`; every name here forwards there with a
``DeprecationWarning`` and goes in 1.0."""

from smilepass_core._compat import module_getattr
from smilepass_core.io.records import __all__ as _moved_names

__getattr__ = module_getattr("smilepass_core.records")

#: The new module's names, so ``from smilepass_core.records import *`` still works (each
#: with its warning).
__all__ = list(_moved_names)

"""The generation metrics' optional dependencies (the ``eval`` extra: SMACT and matminer).

``require("smact.screening")`` imports a module of the extra, or raises :class:`MissingExtraError`
saying which metric needs it and how to install it (``pip install "hfmat[eval]"``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: top-level module -> what hfmat uses it for
EVAL_MODULES = {
    "smact": "SMACT compositional validity",
    "matminer": "the matminer fingerprints of the COV metrics",
}
INSTALL = 'pip install "hfmat[eval]"'


class MissingExtraError(ImportError):
    """A module of an optional extra is not installed."""


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a module of the ``eval`` extra, with an error that
    names the extra when the package itself is missing (other import errors pass through)."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != top:
            raise
        raise MissingExtraError(
            f"{EVAL_MODULES.get(top, top)} needs the package {top!r}, which is not installed: "
            f"install the evaluation extra with `{INSTALL}`"
        ) from err

"""The optional extras: import a package of one, or fail with the command that installs it.

``require("smact.screening")`` imports the module, or raises :class:`MissingExtraError` saying what
needs it and which extra to install (``pip install "hfmat[eval]"``). :data:`PACKAGES` lists the
packages of every extra (tests/test_packaging.py checks it against pyproject.toml).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: top-level module of an optional package -> (the extra that installs it, what hfmat uses it for)
PACKAGES = {
    "smact": ("eval", "SMACT compositional validity"),
    "matminer": ("eval", "the matminer fingerprints of the COV metrics"),
    "chgnet": ("physics", "the CHGNet interatomic potential"),
    "sevenn": ("physics", "the SevenNet interatomic potential"),
    "gradio": ("app", "the web app"),
}


class MissingExtraError(ImportError):
    """A package of an optional extra is not installed."""


def install_command(extra: str) -> str:
    return f'pip install "hfmat[{extra}]"'


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a module of an optional package (:data:`PACKAGES`),
    with an error naming the extra when the package itself is missing (other errors pass through)."""
    top = module.split(".")[0]
    extra, purpose = PACKAGES[top]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != top:
            raise
        raise MissingExtraError(
            f"{purpose} needs the package {top!r}, which is not installed: install the {extra} extra "
            f"with `{install_command(extra)}`"
        ) from err

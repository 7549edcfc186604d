"""The optional ``physics`` extra: a clear error when its packages are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra's packages (pyproject ``[project.optional-dependencies] physics``).
EXTRA_PACKAGES = ("chgnet", "sevenn")
INSTALL_HINT = "pip install 'hfmat[physics]'"


class MissingExtraError(ImportError):
    """A package of the ``physics`` extra is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` (a package of the extra, or one of its modules), or raise
    :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.split(".")[0]
        raise MissingExtraError(
            f"hfmat.physics needs {package!r}, part of the optional extra: {INSTALL_HINT} "
            f"(installs {', '.join(EXTRA_PACKAGES)}); import failed: {err}"
        ) from err

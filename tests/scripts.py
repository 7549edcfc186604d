"""Load a repository script (training/, benchmarks/, tests/fixtures/) as a module, for the tests that
call its functions. Its folder goes on sys.path first, as when it runs (the training scripts
``import common``), and the module is registered under its name (dataclasses need that)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]  # the repository root


def load_script(relative: str, name: str | None = None) -> ModuleType:
    """The script at ``relative`` (to the repository root), freshly executed as module ``name``
    (default: the file's stem)."""
    path = REPO / relative
    if not path.is_file():
        raise FileNotFoundError(f"no script at {path}")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

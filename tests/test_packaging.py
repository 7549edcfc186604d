"""Packaging metadata: the licence, declared dependencies, the `eval` extra and its error message,
and a `make setup` that installs every extra (tests/test_wheel.py checks the built wheel)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EVAL_ONLY = {"smact", "matminer"}


def _declared(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a Python file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _sources() -> list[Path]:
    return sorted((REPO / "src" / "hfmat").rglob("*.py")) + sorted((REPO / "training").rglob("*.py"))


def test_license_is_mit_with_the_file():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "hfmat contributors" in text
    assert PYPROJECT["license"] == "MIT", "use the SPDX string form, not the deprecated table"
    assert PYPROJECT["license-files"] == ["LICENSE"]


def test_every_imported_package_is_declared():
    """Every third-party module that src/ or training/ imports belongs to a declared distribution."""
    local = {p.stem for p in (REPO / "training").rglob("*.py")} | {"hfmat"}
    core = _declared(PYPROJECT["dependencies"])
    extras = {name: _declared(reqs) for name, reqs in PYPROJECT["optional-dependencies"].items()}
    dists = packages_distributions()
    missing = {}
    for path in _sources():
        for module in _imports(path) - local - set(sys.stdlib_module_names):
            owners = {canonicalize_name(d) for d in dists.get(module, [module])}
            allowed = core | (extras["tensorboard"] if path.parent.name == "training" else set())
            if not owners & allowed:
                missing.setdefault(module, []).append(str(path.relative_to(REPO)))
    assert not missing, f"imported but not declared as a dependency: {missing}"
    assert not core & EVAL_ONLY, "smact and matminer belong to the eval extra only"
    assert extras["eval"] >= EVAL_ONLY


def test_eval_packages_are_imported_only_on_use():
    """smact and matminer are imported through hfmat.evaluation.extras.require, never at import time."""
    offenders = [str(p.relative_to(REPO)) for p in _sources() if _imports(p) & EVAL_ONLY]
    assert not offenders, f"import smact/matminer lazily with extras.require: {offenders}"


def test_make_setup_installs_every_extra():
    """`make test` runs every test: the set-up must install all the extras they need."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(r'pip install [^\n]*-e "\.\[([\w,]+)\]"', makefile)
    assert match, "the Makefile's setup does not install hfmat with its extras"
    assert set(match.group(1).split(",")) == set(PYPROJECT["optional-dependencies"])


@pytest.mark.parametrize("missing", ["smact", "matminer"])
def test_missing_eval_extra_names_the_install(monkeypatch, missing):
    from pymatgen.core import Lattice, Structure

    from hfmat.evaluation import composition, fingerprints
    from hfmat.evaluation.extras import MissingExtraError

    for name in [m for m in sys.modules if m.split(".")[0] == missing] + [missing]:
        monkeypatch.setitem(sys.modules, name, None)  # `import NAME` now raises ModuleNotFoundError
    # past the lru_cache: an earlier test may have built the featurizers already
    monkeypatch.setattr(fingerprints, "_featurizers", fingerprints._featurizers.__wrapped__)
    structure = Structure(Lattice.cubic(3.9), ["Sr", "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    calls = {
        "smact": [lambda: composition.smact_valid("SrTiO3")],
        "matminer": [
            lambda: fingerprints.fingerprint(structure),
            lambda: fingerprints.cached_fingerprints([structure], progress=False),
        ],
    }[missing]
    for call in calls:
        with pytest.raises(MissingExtraError, match=re.escape('pip install "hfmat[eval]"')) as err:
            call()
        assert f"'{missing}'" in str(err.value)

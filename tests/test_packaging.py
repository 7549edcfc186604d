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


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level names of a Python file's absolute imports: (at import time, inside functions)."""
    eager: set[str] = set()
    lazy: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        names = set()
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {node.module.split(".")[0]}
        (lazy if in_function else eager).update(names)
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return eager, lazy


def _sources() -> list[Path]:
    return sorted((REPO / "src" / "hfmat").rglob("*.py")) + sorted((REPO / "training").rglob("*.py"))


def test_license_is_mit_with_the_file():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "hfmat contributors" in text
    assert PYPROJECT["license"] == "MIT", "use the SPDX string form, not the deprecated table"
    assert PYPROJECT["license-files"] == ["LICENSE"]


def test_every_imported_package_is_declared():
    """Every third-party module that src/ or training/ imports belongs to a declared distribution: a
    core dependency when imported at import time, a core one or an extra's when imported on use."""
    scripts = (REPO / "training").rglob("*.py")  # the scripts import each other and common/
    local = {p.stem for p in scripts} | {p.parent.name for p in (REPO / "training").rglob("__init__.py")}
    local |= {"hfmat"}
    core = _declared(PYPROJECT["dependencies"])
    any_extra = set().union(*(_declared(reqs) for reqs in PYPROJECT["optional-dependencies"].values()))
    dists = packages_distributions()
    missing = {}
    for path in _sources():
        for lazy, modules in zip((False, True), _imports(path)):
            for module in modules - local - set(sys.stdlib_module_names):
                owners = {canonicalize_name(d) for d in dists.get(module, [module])}
                if not owners & (core | any_extra if lazy else core):
                    missing.setdefault(module, []).append(str(path.relative_to(REPO)))
    assert not missing, f"imported but not declared as a dependency (or imported at import time): {missing}"
    assert not core & EVAL_ONLY, "smact and matminer belong to the eval extra only"


def test_optional_packages_belong_to_their_extra():
    """hfmat.extras.PACKAGES (what `require` names in its error) agrees with pyproject's extras."""
    from hfmat.extras import PACKAGES

    dists = packages_distributions()
    for module, (extra, _) in PACKAGES.items():
        declared = _declared(PYPROJECT["optional-dependencies"][extra])
        assert {canonicalize_name(d) for d in dists.get(module, [module])} & declared, (module, extra)


def test_eval_packages_are_imported_only_on_use():
    """smact and matminer are imported through hfmat.extras.require, never directly."""
    offenders = [str(p.relative_to(REPO)) for p in _sources() if set().union(*_imports(p)) & EVAL_ONLY]
    assert not offenders, f"import smact/matminer with hfmat.extras.require: {offenders}"


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
    from hfmat.extras import MissingExtraError

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


def test_diffusion_card_says_how_to_load_it(tmp_path, hf_cache, capsys):
    """diffusers' generic DiffusionPipeline cannot load an hfmat pipeline: the card says so (and its
    library_name is hfmat), and the snippet it gives instead runs."""
    import shutil

    from diffusers import DiffusionPipeline
    from huggingface_hub import ModelCard

    from hfmat.diffusion.card import write_model_card

    folder = shutil.copytree(REPO / "tests" / "fixtures" / "pipeline-tiny", tmp_path / "pipe")
    write_model_card(folder, repo_id="me/crystal-diffusion")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "hfmat" and "diffusers" in card.data.tags
    with pytest.raises(AttributeError, match="has no attribute CrystalDiffusionPipeline"):
        DiffusionPipeline.from_pretrained(folder)
    text = " ".join(card.text.split())
    assert '"module diffusers has no attribute CrystalDiffusionPipeline"' in text
    assert "`pip install .` in a clone of hfmat" in text
    hf_cache("me/crystal-diffusion", folder)
    snippet = re.search(r"## Use\n.*?```python\n(.*?)```", card.text, re.S)
    namespace = {"__name__": "__card__"}
    exec(compile(snippet.group(1), "README.md", "exec"), namespace)
    assert type(namespace["pipe"]).__name__ == "CrystalDiffusionPipeline"
    assert len(namespace["out"].structures) > 0 and capsys.readouterr().out.strip()

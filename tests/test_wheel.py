"""A pip user's path, from a built wheel: the wheel holds the shipped models, the card templates,
py.typed and the licence; installed into a fresh virtual environment outside the repository,
`hfmat demo` and the README's "Use a published model" snippet run from an empty directory.

Installing torch & co. into the fresh environment would take minutes, so it borrows the running
interpreter's installed dependencies through a .pth file; hfmat itself comes only from the wheel (a
.pth line adds a folder without processing the .pth files inside it, so the editable install of the
development environment stays out), and each test checks that.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.version import Version
from test_hub_snippet import published_snippet

from hfmat.shipped import ALL_NAMES, NAMES, TEXT_PIPELINES

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "hfmat"
pytestmark = pytest.mark.slow  # about 1-2 min on 2 busy cores: a wheel build, two fresh processes


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(what: str, cmd: list, cwd: Path, timeout: int = 600) -> str:
    """Run ``cmd``; on failure, fail with ``what`` and the end of its output."""
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-25:])
        pytest.fail(f"{what} failed (exit status {done.returncode}):\n{tail}")
    return done.stdout


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline (no build isolation) from a copy of the source tree."""
    try:
        assert Version(version("setuptools")) >= Version("77")
    except (PackageNotFoundError, AssertionError):
        pytest.fail('building the wheel needs setuptools>=77 here: pip install -e ".[dev]"')
    tree = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, tree / name)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "src", tree / "src", ignore=junk)  # follows the model_cards link
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    _run("building the wheel (pip wheel)", [*pip, "-w", out, tree], cwd=tree)
    (built,) = out.glob("hfmat-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv (outside the repository) with only the wheel installed into it."""
    root = tmp_path_factory.mktemp("venv")
    assert REPO not in root.parents
    _run("creating a venv", [sys.executable, "-m", "venv", "--without-pip", root], cwd=root)
    python = root / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index"]
    _run("pip install of the wheel into the fresh venv", [*install, wheel], cwd=root)
    purelib = _run("asking the venv for its site-packages", [python, "-c", _PURELIB], cwd=root).strip()
    deps = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(purelib) / "_hfmat_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return root


_PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


def test_wheel_ships_models_card_templates_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        checkpoints = sorted(p for p in (PACKAGE / "checkpoints").rglob("*") if p.is_file())
        assert {p.parent.name for p in checkpoints} >= {"cif-gpt2-perov5", "denoiser"}
        # Crystal CLIP (both towers) and its text side published alone
        assert {p.parent.name for p in checkpoints} >= {"crystal_encoder", "text_encoder", "tokenizer"}
        for name in ALL_NAMES:
            assert f"hfmat/checkpoints/{name}/README.md" in names, f"the wheel lacks the shipped {name}"
        for path in checkpoints:
            name = f"hfmat/{path.relative_to(PACKAGE).as_posix()}"
            assert name in names, f"the wheel lacks {name}"
            assert _sha256(z.read(name)) == _sha256(path.read_bytes()), f"{name} differs in the wheel"
        safetensors = sorted(n for n in names if n.endswith(".safetensors"))
        predictors = [n for n in safetensors if n.startswith("hfmat/evaluation/predictors/")]
        assert len(predictors) == len(list((PACKAGE / "evaluation" / "predictors").glob("*/*.safetensors")))
        two_part = sorted((PACKAGE / "evaluation" / "predictors").glob("*/*.skops"))  # perov-5 dir_gap
        assert two_part and all(f"hfmat/{p.relative_to(PACKAGE).as_posix()}" in names for p in two_part)
        shipped_weights = sorted(p for p in (PACKAGE / "checkpoints").rglob("*.safetensors"))
        # one per generator, two for Crystal CLIP, one for its text encoder, three for each text
        # pipeline (denoiser, text encoder, element head); nothing else is weights
        assert len(shipped_weights) == len(NAMES) + 3 + 3 * len(TEXT_PIPELINES), shipped_weights
        assert len(safetensors) - len(predictors) == len(shipped_weights), safetensors
        cards = sorted((REPO / "model_cards").glob("*.md"))
        assert cards and all(f"hfmat/hub/model_cards/{p.name}" in names for p in cards)
        assert "hfmat/py.typed" in names
        (dist_info,) = {n.split("/")[0] for n in names if ".dist-info/" in n}
        assert f"{dist_info}/licenses/LICENSE" in names
        meta = Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
    assert meta["License-Expression"] == "MIT"
    requires = meta.get_all("Requires-Dist")
    for dep in ("spglib", "jinja2", "PyYAML"):
        assert any(r.startswith(dep) and "extra ==" not in r for r in requires), f"{dep} not a dependency"
    for dep in ("smact", "matminer"):
        (line,) = [r for r in requires if r.startswith(dep)]
        assert 'extra == "eval"' in line, f"{dep} should come only with the eval extra: {line}"


def test_hfmat_comes_from_the_wheel(venv, tmp_path):
    code = "import hfmat, importlib.metadata as m; print(hfmat.__file__); print(m.version('hfmat'))"
    where, _ = _run(
        "importing hfmat in the fresh venv", [venv / "bin" / "python", "-c", code], tmp_path
    ).split()
    assert Path(where).is_relative_to(venv), f"hfmat was imported from {where}, not from the wheel"
    assert not Path(where).is_relative_to(REPO)


def test_demo_runs_from_any_directory(venv, tmp_path):
    """`hfmat demo` of a pip install finds its models inside the package, from an empty folder."""
    out = _run(
        "`hfmat demo` from the wheel",
        [venv / "bin" / "hfmat", "demo", "-n", "1", "--steps", "10", "--out", "out"],
        cwd=tmp_path,
    )
    for part in ("diffusion", "lm"):
        cifs = sorted((tmp_path / "out" / part).glob("*.cif"))
        assert len(cifs) == 3, f"`hfmat demo` wrote {len(cifs)} {part} CIFs, not 3:\n{out[-2000:]}"


def test_published_model_snippet_runs_from_the_wheel(venv, tmp_path, hf_cache):
    """The README's snippet, by repo id, against an offline cache holding the wheel's own models."""
    installed = next((venv / "lib").glob("python*/site-packages/hfmat/checkpoints"))
    hf_cache("hfmat/cif-tokenizer", REPO / "tokenizer")
    for name in ("cif-gpt2-perov5", "crystal-diffusion-perov5"):
        hf_cache(f"hfmat/{name}", installed / name)
    script = tmp_path / "snippet.py"
    script.write_text(published_snippet(REPO / "README.md"))
    lines = _run("the README's 'Use a published model' snippet", [venv / "bin" / "python", script], tmp_path)
    lines = lines.splitlines()
    assert "['Zn', 'O']" in lines
    assert sum(line.startswith("LM: ") for line in lines) == 2, lines
    diffusion = [line for line in lines if line.startswith("diffusion: ")]
    assert len(diffusion) == 2 and all(line.startswith("diffusion: SrTiO3 [") for line in diffusion), lines

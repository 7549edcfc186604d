"""Test harness: the Hub is unreachable, an offline HF cache can be laid out, Accelerate is reset.

The Hugging Face libraries read their environment at import time, so it is set here, before any
test module imports them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_HF_HOME = Path(tempfile.mkdtemp(prefix="hfmat-test-hf-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = str(_HF_HOME)
os.environ["HF_HUB_CACHE"] = str(_HF_HOME / "hub")
os.environ["HF_DATASETS_CACHE"] = str(_HF_HOME / "datasets")
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: the Hub stays unreachable
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
from csv_head import head_csv  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def perov_val_csv(shared_data, tmp_path_factory) -> Path:
    """The first 40 rows of perov_5/val.csv as a one-file dataset (its split is "train"), for the
    tests that run the training scripts."""
    path = tmp_path_factory.mktemp("perov-val") / "perov_val_40.csv"
    return head_csv(shared_data / "perov_5" / "val.csv", 40, path)


@pytest.fixture(scope="session")
def perov_test_head(shared_data, tmp_path_factory) -> Path:
    """A benchmark data dir holding the first 4 rows of perov_5/test.csv as its test.csv (for
    ``--reference perov_5:test --data-dir`` without normalising all 3,785 rows)."""
    data_dir = tmp_path_factory.mktemp("perov-test-head")
    head_csv(shared_data / "perov_5" / "test.csv", 4, data_dir / "test.csv")
    return data_dir


@pytest.fixture
def script_exit(capsys):
    """Returns ``run(script, argv)``: runs a training script's ``main`` as its ``__main__`` does
    (``common.run_main``), checks that it exits with status 2 and no traceback, and returns the
    last line it wrote to stderr (its error message)."""

    def run(script, argv: list[str]) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            script.common.run_main(script.main, argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    return run


@pytest.fixture
def assert_no_local_paths():
    """Returns ``check(folder, *paths)``: no text file of a model folder (what ``hfmat push``
    publishes) names one of ``paths`` (absolute paths of this machine), and no string in its
    training_summary.json or JSON configs is an absolute path."""
    import json
    import os

    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    def check(folder: Path, *paths: Path) -> None:
        for file in sorted(Path(folder).rglob("*")):
            if file.suffix not in (".json", ".md"):
                continue
            text = file.read_text()
            for path in paths:
                assert str(path) not in text, f"{file.name} names the local path {path}"
            if file.suffix == ".json" and file.name != "tokenizer.json":  # its vocabulary has "/"
                absolute = [s for s in strings(json.loads(text)) if len(s) > 1 and os.path.isabs(s)]
                assert not absolute, f"{file.relative_to(folder)} records absolute paths {absolute}"

    return check


def _lay_out(
    cache: Path, repo_id: str, folder: Path, repo_type: str = "model", revision: str = "0" * 40
) -> Path:
    """Copy ``folder`` into ``cache`` as the snapshot of ``repo_id`` at ``refs/main``.

    A model repo without config.json (a tokenizer-only repo) also gets the ``.no_exist`` record
    that huggingface_hub writes when an online fetch finds the file absent: transformers probes
    config.json first and, offline, needs that record to go on."""
    kind = {"model": "models", "dataset": "datasets"}[repo_type]
    root = cache / f"{kind}--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(folder, snapshot)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    if repo_type == "model" and not (snapshot / "config.json").exists():
        (root / ".no_exist" / revision).mkdir(parents=True, exist_ok=True)
        (root / ".no_exist" / revision / "config.json").touch()
    return snapshot


@pytest.fixture
def hf_cache():
    """Returns ``add(repo_id, folder, repo_type="model")`` that lays ``folder`` out in the offline
    hub cache (``$HF_HUB_CACHE``) so ``from_pretrained(repo_id)`` finds it with HF_HUB_OFFLINE=1."""
    cache = Path(os.environ["HF_HUB_CACHE"])
    cache.mkdir(parents=True, exist_ok=True)
    added: list[Path] = []

    def add(repo_id: str, folder: str | Path, repo_type: str = "model") -> Path:
        snapshot = _lay_out(cache, repo_id, Path(folder), repo_type)
        added.append(snapshot.parents[1])
        return snapshot

    yield add
    for root in added:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _reset_accelerate():
    """One AcceleratorState per process: reset it around every test."""
    yield
    try:
        from accelerate.state import AcceleratorState, GradientState, PartialState
    except ImportError:  # pragma: no cover
        return
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    PartialState._reset_state()


@pytest.fixture(scope="session")
def tiny_diffusion_pipeline():
    """Returns ``make(de_novo, num_atoms=4, conditions=None)``: a tiny random
    ``CrystalDiffusionPipeline`` (seeded, eval mode) whose de novo crystals all have ``num_atoms``
    atoms (``conditions``: the denoiser's, for guidance)."""

    def make(de_novo: bool, num_atoms: int = 4, conditions: list[dict] | None = None):
        from tiny import tiny_denoiser

        from hfmat.diffusion import (
            CrystalDiffusionPipeline,
            D3PMScheduler,
            WrappedNormalScheduler,
            lattice_scheduler,
        )

        denoiser = tiny_denoiser(de_novo, num_atoms, conditions=conditions)
        return CrystalDiffusionPipeline(
            denoiser=denoiser,
            lattice_scheduler=lattice_scheduler(),
            coord_scheduler=WrappedNormalScheduler(corrector_steps=1),
            type_scheduler=D3PMScheduler() if de_novo else None,
        )

    return make


@pytest.fixture
def kill_mid_save():
    """Returns ``kill(checkpoints_dir)``: makes ``checkpoint_<i+1>`` as a run killed while saving it
    leaves it (the newest checkpoint's files, weights truncated, no completion marker) and returns
    that folder."""

    def kill(checkpoints: Path) -> Path:
        newest = max(
            (p for p in checkpoints.iterdir() if p.name.split("_")[-1].isdigit()),
            key=lambda p: int(p.name.split("_")[-1]),
        )
        index = int(newest.name.split("_")[-1])
        killed = Path(shutil.copytree(newest, checkpoints / f"checkpoint_{index + 1}"))
        (killed / "hfmat_checkpoint_complete.json").unlink(missing_ok=True)
        for weights in killed.glob("*.safetensors"):
            weights.write_bytes(weights.read_bytes()[:10])
        return killed

    return kill

"""training/train_diffusion.py on a tiny config: a full run to a pipeline folder, exact resume,
--init-from, de novo (gen) training, and two processes under torchrun on CPU."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_diffusion.py"
TINY = REPO / "training" / "configs" / "diffusion_tiny.yaml"


def _script():
    return load_script("training/train_diffusion.py")


@pytest.fixture(scope="module")
def small_csv(perov_val_csv) -> Path:
    """40 rows of the Perov-5 validation split as a one-file dataset (split "train")."""
    return perov_val_csv


def _args(small_csv, out: Path, *extra: str, steps: int = 6, sets: tuple[str, ...] = ()) -> list[str]:
    return [
        "--config", str(TINY), "--output-dir", str(out), *extra,
        "--set", f"dataset={small_csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", f"max_steps={steps}", "per_device_batch_size=8", "save_every=3",
        "eval_every=3", "log_every=1", "hidden_dim=16", "num_layers=1", "num_frequencies=4", "time_embed_dim=8", *sets,
    ]  # fmt: skip


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "denoiser" / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def full_run(small_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = _script().main(_args(small_csv, out))
    return out, summary


def test_full_run_ends_in_a_loadable_pipeline_with_a_card(full_run):
    from hfmat.diffusion import CrystalDiffusionPipeline

    out, summary = full_run
    assert summary["step"] == 6 and summary["stop_reason"] == "done"
    assert summary["train_crystals"] == 32 and summary["eval_crystals"] == 8
    assert all(v == v for v in summary["eval"].values())  # finite, not NaN
    final = out / "final"
    card = (final / "README.md").read_text()
    assert card.startswith("---\n") and "crystal structure prediction" in card and "{{" not in card
    assert json.loads((final / "training_summary.json").read_text())["summary"]["step"] == 6
    pipe = CrystalDiffusionPipeline.from_pretrained(final)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.type_scheduler is None and pipe.denoiser.config.predict_atom_types is False
    # data statistics are registered config values of the denoiser
    assert 2.0 < pipe.denoiser.config.lattice_scale < 3.0
    assert pipe.denoiser.config.num_atoms_distribution[5] == 1.0
    s = pipe(
        compositions="SrTiO3", num_inference_steps=3, generator=torch.Generator().manual_seed(0)
    ).structures[0]
    assert s.composition.reduced_formula == "SrTiO3"
    # checkpoints every 3 steps, in Accelerate's numbered slots
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]


def test_resume_is_exact(full_run, small_csv, tmp_path):
    out, _ = full_run
    script = _script()
    first = script.main(_args(small_csv, tmp_path, "--stop-after-steps", "3"))
    assert first["stop_reason"] == "stopped" and not (tmp_path / "final").exists()
    second = script.main(_args(small_csv, tmp_path, "--resume", "latest"))
    assert second["step"] == 6
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    straight, resumed = _weights(out / "final"), _weights(tmp_path / "final")
    assert straight.keys() == resumed.keys()
    for key in straight:  # EMA weights after 6 steps, straight vs stopped + resumed
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_init_from_starts_from_the_saved_weights(full_run, small_csv, tmp_path):
    out, _ = full_run
    summary = _script().main(
        _args(small_csv, tmp_path, "--init-from", str(out / "final"), steps=2, sets=("lr=0.0",))
    )
    assert summary["step"] == 2
    before, after = _weights(out / "final"), _weights(tmp_path / "final")
    for key in before:  # lr 0: the EMA of unchanged weights is those weights
        torch.testing.assert_close(after[key], before[key])
    record = json.loads((tmp_path / "final" / "training_summary.json").read_text())
    assert [stage["summary"]["step"] for stage in record["previous"]] == [6]  # the history is kept
    assert "Stage 2: continued from the stage before" in (tmp_path / "final" / "README.md").read_text()


def test_init_from_a_repo_id_that_is_not_cached_exits_with_hfmats_message(small_csv, tmp_path, script_exit):
    message = script_exit(_script(), _args(small_csv, tmp_path, "--init-from", "hfmat/no-such-pipeline"))
    assert message.startswith(
        "train_diffusion.py: error: model repo hfmat/no-such-pipeline is not in the local Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE=1" in message and "hf download hfmat/no-such-pipeline" in message
    assert not (tmp_path / "checkpoints").exists()


def test_init_from_a_truncated_denoiser_names_the_file(full_run, small_csv, tmp_path, script_exit):
    out, _ = full_run
    broken = tmp_path / "broken"
    shutil.copytree(out / "final", broken)
    weights = broken / "denoiser" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    message = script_exit(_script(), _args(small_csv, tmp_path / "run", "--init-from", str(broken)))
    assert message.startswith(f"train_diffusion.py: error: {weights} is truncated")


def test_de_novo_training_saves_a_type_scheduler(small_csv, tmp_path):
    from hfmat.diffusion import CrystalDiffusionPipeline, D3PMScheduler

    summary = _script().main(_args(small_csv, tmp_path, steps=2, sets=("task=gen",)))
    assert summary["eval"]["type"] > 0
    pipe = CrystalDiffusionPipeline.from_pretrained(tmp_path / "final")
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.type_scheduler, D3PMScheduler)
    out = pipe(num_samples=2, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in out.structures] == [5, 5]  # Perov-5: the stored distribution is all 5


def _torchrun(cmd: list[str]) -> None:
    """Run ``cmd`` (a torchrun command) to the end, or fail the test after 180 s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:  # end the workers too (torchrun starts each in its own session)
        import psutil

        for worker in psutil.Process(proc.pid).children(recursive=True):
            worker.kill()
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in 180 s: {err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_under_torchrun(small_csv, tmp_path):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        str(SCRIPT), *_args(small_csv, tmp_path, steps=2),
    ]  # fmt: skip
    _torchrun(cmd)
    summary = json.loads((tmp_path / "final" / "training_summary.json").read_text())["summary"]
    assert summary["num_processes"] == 2 and summary["step"] == 2


@pytest.fixture(scope="module")
def mp20_cifs(shared_data, tmp_path_factory) -> Path:
    """22 MP-20 crystals (at most 20 atoms) as .cif files in one folder: a dataset of split "train"."""
    import csv

    csv.field_size_limit(10**9)
    folder = tmp_path_factory.mktemp("mp20") / "mp20_cifs"
    folder.mkdir()
    with open(shared_data / "mp_20_subset" / "val.csv", newline="") as f:
        for _, row in zip(range(22), csv.DictReader(f)):
            (folder / f"{row['material_id']}.cif").write_text(row["cif"])
    return folder


def test_fine_tuning_the_shipped_model_records_what_it_trained_on(mp20_cifs, tmp_path, assert_no_local_paths):
    """A fine-tune of the shipped Perov-5 model on 22 MP-20 CIFs: the card names those CIFs (not
    the first stage's Perov-5 data or its note), records the shipped model as base_model, and no
    file of the folder names a local path (the denoiser config's _name_or_path included)."""
    from huggingface_hub import ModelCard

    from hfmat.shipped import shipped_model

    base = shipped_model("crystal-diffusion-perov5")
    sets = ("eval_holdout=4", "model_name=crystal-diffusion-mp20")
    _script().main(_args(mp20_cifs, tmp_path, "--init-from", str(base), steps=1, sets=sets))
    final = tmp_path / "final"
    card = ModelCard.load(final / "README.md")
    assert card.data.base_model == "hfmat/crystal-diffusion-perov5"
    assert card.data.to_dict().get("datasets") is None  # local CIFs: no Hub dataset to name
    head = next(line for line in card.text.splitlines() if line.startswith("Dataset"))
    assert "local data `mp20_cifs` split `train` (18 crystals; 4 held out for the eval loss)" in head
    assert "perov" not in head.lower() and "Not the standard protocol" not in card.text
    shipped_stages = 1 + len(json.loads((base / "training_summary.json").read_text()).get("previous", []))
    # the fine-tune is the stage after the shipped model's own stages
    assert f"Stage {shipped_stages + 1}: on local data `mp20_cifs`" in card.text
    assert "Fine-tuned from [`hfmat/crystal-diffusion-perov5`]" in card.text
    record = json.loads((final / "training_summary.json").read_text())
    assert record["base_model"] == "hfmat/crystal-diffusion-perov5" and record["dataset_kind"] == "local"
    assert "_name_or_path" not in json.loads((final / "denoiser" / "config.json").read_text())
    assert_no_local_paths(final, tmp_path, mp20_cifs, REPO)


def test_data_dir_flag_overrides_the_config(shared_data, tmp_path, script_exit):
    script = _script()
    cfg = script.common.config_from_args(
        script.parse_args(["--config", str(TINY), "--data-dir", str(shared_data)]), script.DEFAULTS
    )
    assert cfg["data_dir"] == str(shared_data)
    assert cfg["dataset_note"]  # the config's own data: its note stays
    overridden = script.parse_args(
        ["--config", str(TINY), "--data-dir", str(shared_data), "--set", "dataset=mp_20"]
    )
    assert script.common.config_from_args(overridden, script.DEFAULTS)["dataset_note"] == ""
    # the config's data_dir locates its benchmark: a file given instead does not inherit it (it was
    # joined to the file's path; the old absolute one replaced the given folder by the whole shared
    # data folder, and loading failed with an unrelated datasets column error)
    local = script.parse_args(["--config", str(TINY), "--set", f"dataset={tmp_path}"])
    assert script.common.config_from_args(local, script.DEFAULTS)["data_dir"] is None
    message = script_exit(script, ["--config", str(TINY), "--data-dir", "no/such/folder"])
    assert message.startswith("train_diffusion.py: error: data_dir 'no/such/folder' is not a folder")
    assert "--data-dir" in message


def test_resume_latest_after_a_kill_mid_save_is_exact(full_run, small_csv, tmp_path, kill_mid_save):
    out, _ = full_run
    script = _script()
    script.main(_args(small_csv, tmp_path, "--stop-after-steps", "3"))
    killed = kill_mid_save(tmp_path / "checkpoints")  # checkpoint_1, as SIGKILL during its save leaves it
    assert script.main(_args(small_csv, tmp_path, "--resume", "latest"))["step"] == 6
    assert killed.with_name("checkpoint_1.incomplete").is_dir()
    straight, resumed = _weights(out / "final"), _weights(tmp_path / "final")
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_training_summary_records_the_elements_and_cell_sizes_trained_on(full_run, small_csv):
    """``data`` in training_summary.json holds exactly the training rows' elements and atom counts
    (not the held-out ones'), and the CLI's out-of-scope warning reads it."""
    from pymatgen.core import Composition

    from hfmat.data import load_crystal_dataset
    from hfmat.scope import training_scope

    out, _ = full_run
    data = json.loads((out / "final" / "training_summary.json").read_text())["data"]
    script = _script()
    cfg = script.common.config_from_args(script.parse_args(_args(small_csv, out)), script.DEFAULTS)
    rows = load_crystal_dataset(str(small_csv), splits=["train"])["train"]
    train, _ = script.common.holdout_and_limit(rows, None, cfg)
    expected = sorted({el.symbol for f in train["formula"] for el in Composition(f).elements})
    assert data == {"crystals": 32, "elements": expected, "num_atoms": [5]}
    assert training_scope(out / "final").elements == tuple(expected)


def test_conditioned_training_under_torchrun(small_csv, tmp_path):
    """Two processes training a conditioned de novo model (docs/guidance.md): condition dropout
    leaves the null embeddings unused in some batches, which DDP must tolerate; the saved denoiser
    carries the conditions with the training rows' statistics."""
    from hfmat.diffusion import CrystalDiffusionPipeline

    config = REPO / "training" / "configs" / "diffusion_tiny_conditioned.yaml"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        str(SCRIPT), "--config", str(config), "--output-dir", str(tmp_path),
        "--set", f"dataset={small_csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", "max_steps=3", "per_device_batch_size=4", "save_every=3", "eval_every=3",
        "hidden_dim=16", "num_layers=1", "num_frequencies=4", "time_embed_dim=8",
    ]  # fmt: skip
    _torchrun(cmd)
    summary = json.loads((tmp_path / "final" / "training_summary.json").read_text())["summary"]
    assert summary["num_processes"] == 2 and summary["step"] == 3
    pipe = CrystalDiffusionPipeline.from_pretrained(tmp_path / "final")
    names = [c["name"] for c in pipe.denoiser.config.conditions]
    assert names == ["heat_ref", "dir_gap"]
    assert all(c["std"] > 0 for c in pipe.denoiser.config.conditions)

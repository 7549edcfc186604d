"""The GPU recipes (training/configs/cif_lm_small.yaml: CrystaLLM-small's shape; diffusion_diffcsp.yaml:
DiffCSP's size) run as they are, on a few Perov-5 rows for two optimizer steps, on the CPU: the
full-size model, bf16 mixed precision (autocast on the CPU), and gradient accumulation of two
batches per optimizer step. docs/training_gpu.md has the launch commands."""

from __future__ import annotations

import json

import pytest
from scripts import REPO, load_script

CONFIGS = REPO / "training" / "configs"


def _tiny_data(csv) -> list[str]:
    return [
        f"dataset={csv}", "data_dir=null", "train_split=train", "eval_split=null", "eval_holdout=2",
        "max_train_samples=4", "per_device_batch_size=1", "eval_batch_size=2",
        "gradient_accumulation_steps=2", "max_steps=2", "warmup_steps=1", "log_every=1",
        "eval_every=2", "save_every=2",
    ]  # fmt: skip


@pytest.mark.slow  # ~26M parameters: a few seconds per step on the CPU
def test_cif_lm_small_recipe_dry_run(perov_val_csv, tmp_path):
    script = load_script("training/train_cif_lm.py")
    argv = ["--config", str(CONFIGS / "cif_lm_small.yaml"), "--output-dir", str(tmp_path), "--set"]
    summary = script.main(argv + _tiny_data(perov_val_csv) + [f"tokenizer={REPO / 'tokenizer'}"])
    assert summary["step"] == 2 and summary["stop_reason"] == "done"
    assert summary["train_loss"] == summary["train_loss"]  # finite, not NaN
    config = json.loads((tmp_path / "final" / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_positions"]) == (8, 8, 512, 1024)
    assert 25e6 < summary["n_params"] < 27e6
    record = json.loads((tmp_path / "final" / "training_summary.json").read_text())["config"]
    assert record["mixed_precision"] == "bf16" and record["gradient_accumulation_steps"] == 2


@pytest.mark.slow
def test_diffusion_diffcsp_recipe_dry_run(perov_val_csv, tmp_path):
    script = load_script("training/train_diffusion.py")
    argv = ["--config", str(CONFIGS / "diffusion_diffcsp.yaml"), "--output-dir", str(tmp_path), "--set"]
    summary = script.main(argv + _tiny_data(perov_val_csv))
    assert summary["step"] == 2 and summary["stop_reason"] == "done"
    assert all(v == v for v in summary["eval"].values())
    config = json.loads((tmp_path / "final" / "denoiser" / "config.json").read_text())
    assert (config["hidden_dim"], config["num_layers"], config["num_frequencies"]) == (512, 6, 128)
    record = json.loads((tmp_path / "final" / "training_summary.json").read_text())["config"]
    assert record["mixed_precision"] == "bf16" and record["gradient_accumulation_steps"] == 2

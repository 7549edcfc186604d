"""training/train_cif_lm.py with the tiny config: a run, the Hub-ready folder, exact resume."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "cif_lm_tiny.yaml"


@pytest.fixture(scope="module")
def train_script():
    return load_script("training/train_cif_lm.py")


@pytest.fixture(scope="module")
def common(train_script):
    return sys.modules["common"]  # training/common/, as the script imported it


@pytest.fixture(scope="module")
def tiny_csv(perov_val_csv) -> Path:
    """40 rows of perov_5/val.csv (the runs below featurize the first 20: 16 train + 4 held out)."""
    return perov_val_csv


def _args(tiny_csv, out, *extra):
    overrides = [f"dataset={tiny_csv}", "train_split=train", "data_dir=null", "max_steps=4", "save_every=2"]
    overrides += ["eval_every=2", "max_train_samples=16", "eval_holdout=4"]
    return ["--config", str(TINY), "--output-dir", str(out), *extra, "--set", *overrides]


@pytest.fixture(scope="module")
def full_run(train_script, tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-full")
    summary = train_script.main(_args(tiny_csv, out))
    _reset_accelerate()
    return out, summary


def _reset_accelerate():
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    PartialState._reset_state()


def test_tiny_run_writes_a_hub_ready_folder(full_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, summary = full_run
    assert summary["step"] == 4 and summary["stop_reason"] == "done"
    assert (
        summary["eval_loss"] is not None and summary["eval_loss"] < 7.0
    )  # below uniform (ln 551 = 6.31 + margin)
    final = out / "final"
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (final / name).is_file(), name
    assert '"tokenizer_class": "PreTrainedTokenizerFast"' in (final / "tokenizer_config.json").read_text()
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.generation_config.eos_token_id == tok.eos_token_id != tok.pad_token_id
    card = (final / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: transformers" in card
    assert f"{summary['eval_loss']:.4f}" in card  # the measured eval loss is in the card
    assert (out / "logs").is_dir()  # tensorboard


def test_resumed_run_equals_an_uninterrupted_one(full_run, train_script, tiny_csv, tmp_path):
    from safetensors.torch import load_file

    out_full, summary_full = full_run
    stopped = train_script.main(_args(tiny_csv, tmp_path, "--stop-after-steps", "2"))
    _reset_accelerate()
    assert stopped["stop_reason"] == "stopped" and stopped["step"] == 2
    assert not (tmp_path / "final").exists()
    resumed = train_script.main(_args(tiny_csv, tmp_path, "--resume", "latest"))
    assert resumed["step"] == 4
    assert resumed["train_loss"] == summary_full["train_loss"]
    assert resumed["eval_loss"] == summary_full["eval_loss"]
    a = load_file(out_full / "final" / "model.safetensors")
    b = load_file(tmp_path / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)
    # the resumed run saved into a new slot instead of overwriting checkpoint_0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]


def test_config_errors_are_clear(common, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_layer: 2\nn_layers: 3\n")
    with pytest.raises(common.ConfigError, match="unknown keys \\['n_layers'\\]"):
        common.load_config(bad, {"n_layer": 1})
    with pytest.raises(common.ConfigError, match="not found"):
        common.load_config(tmp_path / "missing.yaml")
    with pytest.raises(common.ConfigError, match="key=value"):
        common.merge_overrides({"lr": 1}, ["lr"])
    cfg = common.merge_overrides({"lr": 1.0, "bf16": True}, ["lr=3e-4", "bf16=false"])
    assert cfg == {"lr": 3e-4, "bf16": False}
    assert json.loads(json.dumps(common.flat_hparams({"betas": [0.9, 0.95], "x": None}))) == {
        "betas": "[0.9, 0.95]",
        "x": "None",
    }


def test_init_from_a_repo_id_that_is_not_cached_exits_with_hfmats_message(
    train_script, tiny_csv, tmp_path, script_exit
):
    message = script_exit(train_script, _args(tiny_csv, tmp_path, "--init-from", "hfmat/no-such-lm"))
    assert message.startswith(
        "train_cif_lm.py: error: model repo hfmat/no-such-lm is not in the local Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE=1" in message and "hf download hfmat/no-such-lm" in message
    assert not (tmp_path / "checkpoints").exists()


def test_init_from_a_cached_repo_id_starts_from_its_weights(
    full_run, train_script, tiny_csv, hf_cache, tmp_path
):
    from safetensors.torch import load_file

    out, _ = full_run
    hf_cache("hfmat/tiny-lm", out / "final")
    summary = train_script.main(
        _args(tiny_csv, tmp_path, "--init-from", "hfmat/tiny-lm") + ["max_steps=1", "lr=0.0"]
    )
    assert summary["step"] == 1
    record = json.loads((tmp_path / "final" / "training_summary.json").read_text())
    assert record["config"]["init_from"] == "hfmat/tiny-lm"
    before = load_file(out / "final" / "model.safetensors")
    after = load_file(tmp_path / "final" / "model.safetensors")
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)  # lr 0


def test_init_from_a_truncated_checkpoint_names_the_file(
    full_run, train_script, tiny_csv, tmp_path, script_exit
):
    out, _ = full_run
    broken = tmp_path / "broken"
    shutil.copytree(out / "final", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    message = script_exit(train_script, _args(tiny_csv, tmp_path / "run", "--init-from", str(broken)))
    assert message.startswith(f"train_cif_lm.py: error: {weights} is truncated")


def test_the_folder_names_no_local_path(full_run, tiny_csv, assert_no_local_paths):
    """The card and training_summary.json (which `hfmat push` publishes) name the data by file
    name, never by the absolute path it was read from."""
    out, summary = full_run
    assert_no_local_paths(out / "final", tiny_csv, out, REPO)
    card = (out / "final" / "README.md").read_text()
    assert (
        "Data: local data `perov_val_40.csv` split `train` (16 crystals; 4 held out for the eval loss)."
        in card
    )
    assert summary["train_crystals"] == 16 and summary["eval_crystals"] == 4


def test_init_from_a_local_folder_records_the_repo_id_it_declares(
    full_run, train_script, tiny_csv, tmp_path, assert_no_local_paths
):
    from huggingface_hub import ModelCard

    out, _ = full_run
    run = _args(tiny_csv, tmp_path / "ft", "--init-from", str(out / "final")) + ["max_steps=1"]
    train_script.main([*run, "model_name=cif-gpt2-ft"])
    _reset_accelerate()
    card = ModelCard.load(tmp_path / "ft" / "final" / "README.md")
    assert card.data.base_model == "hfmat/cif-gpt2-tiny"  # what the folder's card declares
    assert "Fine-tuned from [`hfmat/cif-gpt2-tiny`]" in card.text
    assert_no_local_paths(tmp_path / "ft" / "final", out, tmp_path)

    bare = Path(shutil.copytree(out / "final", tmp_path / "bare"))
    (bare / "README.md").unlink()  # a folder that declares no repo id
    train_script.main(_args(tiny_csv, tmp_path / "ft2", "--init-from", str(bare)) + ["max_steps=1"])
    _reset_accelerate()
    card = ModelCard.load(tmp_path / "ft2" / "final" / "README.md")
    assert card.data.base_model is None
    assert (
        "Started from the local folder `bare` (`--init-from`), whose card declares no Hub repo id."
        in card.text
    )
    assert_no_local_paths(tmp_path / "ft2" / "final", bare, tmp_path)


def test_saved_tokenizer_states_the_models_length_and_generation_config_no_max_length(full_run):
    out, _ = full_run
    final = out / "final"
    n_positions = json.loads((final / "config.json").read_text())["n_positions"]
    assert json.loads((final / "tokenizer_config.json").read_text())["model_max_length"] == n_positions
    assert "max_length" not in json.loads((final / "generation_config.json").read_text())


def test_resume_latest_after_a_kill_mid_save_equals_an_uninterrupted_run(
    full_run, train_script, tiny_csv, tmp_path, kill_mid_save
):
    from safetensors.torch import load_file

    out_full, summary_full = full_run
    train_script.main(_args(tiny_csv, tmp_path, "--stop-after-steps", "2"))
    _reset_accelerate()
    killed = kill_mid_save(tmp_path / "checkpoints")  # checkpoint_1, as SIGKILL during its save leaves it
    resumed = train_script.main(_args(tiny_csv, tmp_path, "--resume", "latest"))
    assert resumed["step"] == 4 and resumed["eval_loss"] == summary_full["eval_loss"]
    a = load_file(out_full / "final" / "model.safetensors")
    b = load_file(tmp_path / "final" / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    assert killed.with_name("checkpoint_1.incomplete").is_dir()


def test_training_summary_records_the_elements_and_cell_sizes_trained_on(full_run):
    """``data`` in training_summary.json: the 16 training rows' elements and atom counts, which the
    CLI's out-of-scope warning reads."""
    from hfmat.scope import training_scope

    out, _ = full_run
    data = json.loads((out / "final" / "training_summary.json").read_text())["data"]
    assert data["crystals"] == 16 and data["num_atoms"] == [5]
    assert "O" in data["elements"] or "N" in data["elements"] or "F" in data["elements"]
    assert data["elements"] == sorted(set(data["elements"])) and 3 <= len(data["elements"]) <= 48
    assert training_scope(out / "final").elements == tuple(data["elements"])


def test_too_few_rows_for_one_batch_is_a_clear_error_not_a_hang(
    train_script, tiny_csv, tmp_path, script_exit
):
    """A training split that makes no whole batch (the loader drops the partial one) used to leave
    the loop waiting for a batch forever."""
    args = [*_args(tiny_csv, tmp_path), "per_device_batch_size=512"]  # the last of the --set list
    message = script_exit(train_script, args)
    assert "make no whole batch of per_device_batch_size=512" in message

"""training/train_cif_lm.py with several sources in one config (``datasets:``): both reach the
training set, each is counted in the training record and the card, and hfmat.scope sees them all."""

from __future__ import annotations

import json
from pathlib import Path

from csv_head import head_csv
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "cif_lm_tiny.yaml"


def test_two_sources_both_reach_the_training_set_and_are_counted(
    shared_data, tmp_path, assert_no_local_paths
):
    script = load_script("training/train_cif_lm.py")
    perov = head_csv(shared_data / "perov_5" / "val.csv", 10, tmp_path / "perov.csv")
    carbon = head_csv(shared_data / "carbon_24" / "val.csv", 5, tmp_path / "carbon.csv")
    sources = json.dumps(
        [{"dataset": str(perov), "name": "perov"}, {"dataset": str(carbon), "name": "carbon", "repeat": 2}]
    )
    out = tmp_path / "run"
    overrides = [f"datasets={sources}", "data_dir=null", "max_steps=2", "eval_every=2", "save_every=2"]
    overrides += ["eval_holdout=3", "per_device_batch_size=4", "n_positions=896"]
    summary = script.main(["--config", str(TINY), "--output-dir", str(out), "--set", *overrides])
    # 15 rows: 2 + 1 held out (in proportion), the rest trained on, carbon's 4 twice
    assert summary["eval_crystals"] == 3 and summary["train_crystals"] == 8 + 2 * 4
    record = json.loads((out / "final" / "training_summary.json").read_text())
    assert record["data"]["sources"] == {
        "perov:train": {
            "dataset": "perov.csv",
            "split": "train",
            "train_crystals": 8,
            "eval_crystals": 2,
            "repeat": 1,
        },
        "carbon:train": {
            "dataset": "carbon.csv",
            "split": "train",
            "train_crystals": 4,
            "eval_crystals": 1,
            "repeat": 2,
        },
    }
    assert (
        record["data"]["crystals"] == 12
        and "C" in record["data"]["elements"]
        and "O" in record["data"]["elements"]
    )
    assert record["config"]["dataset"] == "perov:train + carbon:train"
    card = (out / "final" / "README.md").read_text()
    assert (
        "`perov:train` (8 crystals; 2 held out)" in card
        and "`carbon:train` (4 crystals, used 2 times per epoch; 1 held out)" in card
    )
    assert_no_local_paths(out / "final", str(tmp_path))

    from hfmat.scope import out_of_scope, training_scope

    scope = training_scope(out / "final")
    assert "C" in scope.elements and out_of_scope(scope, "C8") is None
    assert "Xe never occurs in its training data" in out_of_scope(scope, "XeF2")


def test_eval_split_with_several_sources_is_refused(script_exit, tmp_path):
    script = load_script("training/train_cif_lm.py")
    sources = json.dumps([{"dataset": "perov_5", "split": "val"}])
    message = script_exit(
        script,
        [
            "--config",
            str(TINY),
            "--output-dir",
            str(tmp_path),
            "--set",
            f"datasets={sources}",
            "eval_split=val",
        ],
    )
    assert "eval_split is not used with datasets" in message

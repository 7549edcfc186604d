"""training/make_rft_data.py: rejection-sampled training CSV for a CIF LM (expert iteration)."""

from __future__ import annotations

import csv
import json

import pytest
from scripts import load_script


@pytest.fixture(scope="module")
def rft():
    return load_script("training/make_rft_data.py")


def test_writes_only_valid_samples_and_counts_the_rest(rft, perov_val_csv, tmp_path):
    out = tmp_path / "data.csv"
    args = ["--model", "cif-gpt2-perov5", "--reference", f"{perov_val_csv}:train", "--limit", "3"]
    summary = rft.main([*args, "--samples", "2", "--max-attempts", "2", "--out", str(out)])
    assert summary["prompts"] == 3 and summary["written"] + summary["invalid_after_last_draw"] == 6
    assert summary["draws"] >= 6 and summary["valid_first_draw"] <= summary["written"]
    assert json.loads(out.with_suffix(".json").read_text()) == summary
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["written"] and len({r["material_id"] for r in rows}) == len(rows)
    from hfmat.data import load_crystal_dataset

    data = load_crystal_dataset(str(out))["train"]  # what train_cif_lm.py reads
    assert len(data) == len(rows)
    # the same seed draws the same samples
    again = rft.main([*args, "--samples", "2", "--max-attempts", "2", "--out", str(tmp_path / "again.csv")])
    assert (tmp_path / "again.csv").read_text() == out.read_text() and again["draws"] == summary["draws"]


def test_bad_arguments(rft, tmp_path, capsys):
    base = ["--model", "cif-gpt2-perov5", "--reference", "perov_5:val"]
    for extra, message in (
        (["--samples", "0", "--out", str(tmp_path / "a.csv")], "--samples must be at least 1"),
        (["--temperature", "0", "--out", str(tmp_path / "a.csv")], "--temperature must be > 0"),
    ):
        with pytest.raises(SystemExit):
            rft.parse_args([*base, *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rft.parse_args(
            ["--model", "cif-gpt2-perov5", "--reference", "perov_5", "--out", str(tmp_path / "b.csv")]
        )
    assert "name the split" in capsys.readouterr().err
    (tmp_path / "taken.csv").write_text("x")
    with pytest.raises(SystemExit):
        rft.parse_args([*base, "--out", str(tmp_path / "taken.csv")])
    assert "exists" in capsys.readouterr().err


def test_the_shipped_rft_model_records_its_rounds_and_loads_with_transformers():
    """cif-gpt2-perov5-rft: a plain GPT-2 whose training record lists the supervised stage and every
    round (each trained on make_rft_data.py samples), fine-tuned from cif-gpt2-perov5 as its card
    says, sampling at T 0.7 (the temperature its figures are measured at)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat import shipped
    from hfmat.hub.provenance import fine_tuned_from, read_training_record, stages
    from hfmat.lm import generate_cifs

    folder = shipped.shipped_model(shipped.LM_RFT)
    record = read_training_record(folder)
    rounds = [s for s in stages(record) if str(s["config"].get("dataset", "")).startswith("runs/rft_perov5")]
    assert len(rounds) >= 2 and all(s["config"]["model_name"] == shipped.LM_RFT for s in rounds)
    assert fine_tuned_from(record, f"hfmat/{shipped.LM_RFT}") == "hfmat/cif-gpt2-perov5"
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.generation_config.temperature == 0.7
    samples = generate_cifs(
        model, AutoTokenizer.from_pretrained(folder), compositions=["SrTiO3"], num_samples=2, seed=0
    )
    assert all(s.text.startswith("data_Sr1Ti1O3\n") for s in samples)

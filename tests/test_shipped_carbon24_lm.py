"""The shipped Carbon-24 CIF language model (hfmat/checkpoints/cif-gpt2-carbon24): found by its bare
name, long enough for every Carbon-24 CIF, records that it saw only carbon, writes a carbon cell for
a carbon prompt with `hfmat generate`, and warns for a prompt outside its training data."""

from __future__ import annotations

import json

from pymatgen.core import Structure

from hfmat.cli import main
from hfmat.scope import training_scope
from hfmat.shipped import LM_CARBON24, shipped_model


def test_carbon24_lm_records_carbon_only_and_its_context_fits_carbon24():
    folder = shipped_model(LM_CARBON24)
    config = json.loads((folder / "config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    # the longest canonical Carbon-24 CIF is 862 tokens (val) / 860 (test) with the shipped tokenizer
    assert config["n_positions"] >= 862 and tokenizer_config["model_max_length"] == config["n_positions"]
    scope = training_scope(folder)
    assert scope.dataset == "carbon_24" and scope.elements == ("C",)
    assert min(scope.atom_counts) >= 6 and max(scope.atom_counts) <= 24


def test_carbon24_lm_folder_names_its_data_and_no_local_path(assert_no_local_paths):
    folder = shipped_model(LM_CARBON24)
    assert_no_local_paths(folder)
    card = (folder / "README.md").read_text()
    assert "trained on the val split only" in card.lower()
    assert "17.54" in card and "0.2759" in card  # DiffCSP's published Carbon-24 k=1 figures beside ours


def test_generate_with_a_carbon_prompt_writes_carbon_cells_without_warning(tmp_path, capsys):
    out = tmp_path / "c8"
    argv = ["generate", "--model", LM_CARBON24, "--composition", "C8", "-n", "4", "--seed", "0"]
    assert main([*argv, "--threads", "1", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    files = json.loads((out / "summary.json").read_text())["files"]
    assert len(files) == 4
    for f in files:
        if f["format"] == "cif":  # a sample that parsed: only carbon, whatever its checks say
            assert {str(el) for el in Structure.from_file(out / f["file"]).composition} == {"C"}
    valid = [f for f in files if f["valid"]]
    assert valid, f"none of 4 samples of C8 passed the validity checks: {[f['failed_checks'] for f in files]}"
    for f in valid:  # a valid sample is the prompted cell
        assert Structure.from_file(out / f["file"]).composition.formula == "C8"


def test_generate_with_a_non_carbon_prompt_warns_out_of_training_data(tmp_path, capsys):
    argv = ["generate", "--model", LM_CARBON24, "--composition", "Si8", "-n", "1", "--max-new-tokens", "5"]
    assert main([*argv, "--out", str(tmp_path / "si8")]) == 0
    err = capsys.readouterr().err
    assert (
        "hfmat generate: warning: Si8 (8 atoms in the cell) is outside what the model was trained on" in err
    )
    assert "Si never occurs in its training data" in err and "Trained on carbon_24" in err


def test_card_snippets_prompt_with_a_composition_the_model_was_trained_on():
    from hfmat.hub.provenance import read_training_record
    from hfmat.lm.card import example_composition

    card = (shipped_model(LM_CARBON24) / "README.md").read_text()
    assert 'compositions=["C8"]' in card and "--composition C8 " in card and "`<bos>data_C8\\n`" in card
    snippet = card[card.index("```python") : card.index("## Model")]
    assert "SrTiO3" not in snippet and "Sr1Ti1O3" not in snippet
    record = read_training_record(shipped_model(LM_CARBON24))
    assert example_composition(record) == "C8"
    perov = {"config": {}, "data": {"elements": ["Sr", "Ti", "O", "Ba"], "num_atoms": [5]}}
    assert example_composition(perov) == "SrTiO3"
    assert example_composition({"config": {"card_example": "LiFePO4"}, "data": {}}) == "LiFePO4"

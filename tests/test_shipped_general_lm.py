"""The shipped general-chemistry CIF language model (hfmat/checkpoints/cif-gpt2-general): trained on
the MP-20 subset's train split, Perov-5 val and Carbon-24 val together, long enough for every CIF of
the three, records each source and every element it saw, says in bold that it saw 847 MP-20
structures, and warns for a prompt with an element it never saw."""

from __future__ import annotations

import json

from hfmat.cli import main
from hfmat.scope import out_of_scope, training_scope
from hfmat.shipped import LM_GENERAL, NAMES, shipped_model


def test_general_lm_records_its_sources_and_its_context_fits_them():
    folder = shipped_model(LM_GENERAL)
    assert LM_GENERAL in NAMES
    config = json.loads((folder / "config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    # longest canonical CIFs with the shipped tokenizer: carbon_24 val 862, mp_20_subset train 763
    assert config["n_positions"] >= 862 and tokenizer_config["model_max_length"] == config["n_positions"]
    record = json.loads((folder / "training_summary.json").read_text())
    sources = record["data"]["sources"]
    assert list(sources) == ["mp_20_subset:train", "perov_5:val", "carbon_24:val"]
    assert sum(s["train_crystals"] + s["eval_crystals"] for s in sources.values()) == 847 + 3787 + 2032
    assert all(s["train_crystals"] > 0 and s["eval_crystals"] > 0 for s in sources.values())
    scope = training_scope(folder)
    assert {"C", "Sr", "Ti", "O", "Li", "Fe", "P"} <= set(scope.elements)
    assert set(scope.atom_counts) >= {1, 5, 6, 20, 24}


def test_general_lm_card_states_the_data_caveat_in_bold_and_the_mp20_figures(assert_no_local_paths):
    folder = shipped_model(LM_GENERAL)
    assert_no_local_paths(folder)
    card = (folder / "README.md").read_text()
    assert "**Trained on 847 MP-20 structures, not the 27,136 of the full MP-20 train split**" in card
    assert "`mp_20_subset:train` (809 crystals" in card
    metrics = json.loads((folder / "eval_metrics.json").read_text())
    assert metrics["dataset_type"] == "mp_20_subset" and metrics["dataset_split"] == "val"
    assert {r["num_compositions"] for r in metrics["runs"]} == {123}
    assert "58.70" in card and "0.0408" in card  # CrystaLLM large's published MP-20 k=1 beside ours


def test_a_prompt_with_an_element_it_never_saw_warns(tmp_path, capsys):
    scope = training_scope(shipped_model(LM_GENERAL))
    assert out_of_scope(scope, "LiFePO4") is None and out_of_scope(scope, "C8") is None
    argv = ["generate", "--model", LM_GENERAL, "--composition", "XeF2", "-n", "1", "--max-new-tokens", "5"]
    assert main([*argv, "--out", str(tmp_path / "xef2")]) == 0
    err = capsys.readouterr().err
    assert (
        "hfmat generate: warning: XeF2 (3 atoms in the cell) is outside what the model was trained on" in err
    )
    assert "Xe never occurs in its training data" in err

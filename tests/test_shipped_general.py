"""The shipped general-chemistry models, the CIF language model (cif-gpt2-general) and the
structure-prediction diffusion pipeline (crystal-diffusion-general): trained on the MP-20 subset's
train split, Perov-5 val and Carbon-24 val together, they record each source and every element they
saw, take every cell of them, say in bold that they saw 847 MP-20 structures, report their MP-20
subset val figures, and warn for a prompt with an element they never saw."""

from __future__ import annotations

import json

import torch

from hfmat.cli import main
from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.scope import out_of_scope, training_scope
from hfmat.shipped import DIFFUSION_GENERAL, LM_GENERAL, NAMES, shipped_model


def _assert_general_sources(folder):
    """Both general models: the three sources in order, every crystal counted, the scope they give."""
    record = json.loads((folder / "training_summary.json").read_text())
    sources = record["data"]["sources"]
    assert list(sources) == ["mp_20_subset:train", "perov_5:val", "carbon_24:val"]
    assert sum(s["train_crystals"] + s["eval_crystals"] for s in sources.values()) == 847 + 3787 + 2032
    assert all(s["train_crystals"] > 0 and s["eval_crystals"] > 0 for s in sources.values())
    scope = training_scope(folder)
    assert {"C", "Sr", "Ti", "O", "Li", "Fe", "P"} <= set(scope.elements)
    return scope


def test_general_lm_records_its_sources_and_its_context_fits_them():
    folder = shipped_model(LM_GENERAL)
    assert LM_GENERAL in NAMES
    config = json.loads((folder / "config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    # longest canonical CIFs with the shipped tokenizer: carbon_24 val 862, mp_20_subset train 763
    assert config["n_positions"] >= 862 and tokenizer_config["model_max_length"] == config["n_positions"]
    scope = _assert_general_sources(folder)
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


def test_general_pipeline_records_its_sources_and_takes_every_cell_of_them():
    folder = shipped_model(DIFFUSION_GENERAL)
    assert DIFFUSION_GENERAL in NAMES
    den = json.loads((folder / "denoiser" / "config.json").read_text())
    assert den["max_atoms"] >= 24 and not den["predict_atom_types"]  # Carbon-24's largest cells
    scope = _assert_general_sources(folder)
    assert max(scope.atom_counts) <= den["max_atoms"] and {5, 6, 20, 24} <= set(scope.atom_counts)
    assert out_of_scope(scope, "LiFePO4") is None and "Xe never occurs" in out_of_scope(scope, "XeF2")


def test_general_pipeline_samples_an_mp20_and_a_carbon_cell():
    pipe = CrystalDiffusionPipeline.from_pretrained(shipped_model(DIFFUSION_GENERAL))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        compositions=["Li2Fe2P2O8", "C24"],
        num_samples=1,
        num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
    )
    assert [s.composition.formula.replace(" ", "") for s in out.structures] == ["Li2Fe2P2O8", "C24"]
    assert all(s.volume > 0 for s in out.structures)


def test_general_pipeline_card_states_the_data_caveat_in_bold_and_the_mp20_figures(assert_no_local_paths):
    folder = shipped_model(DIFFUSION_GENERAL)
    assert_no_local_paths(folder)
    card = (folder / "README.md").read_text()
    assert "**Trained on 847 MP-20 structures, not the 27,136 of the full MP-20 train split**" in card
    assert "`mp_20_subset:train` (809 crystals, used 3 times per epoch" in card
    assert "mp_20_subset **val** compositions" in card
    metrics = json.loads((folder / "eval_metrics.json").read_text())
    assert {r["args"]["split"] for r in metrics["runs"]} == {"val"}
    assert {row["targets"] for r in metrics["runs"] for row in r["rows"]} == {123}
    assert "51.49" in card and "0.0631" in card  # DiffCSP's published MP-20 k=1 beside ours

"""The shipped general-chemistry structure-prediction pipeline
(hfmat/checkpoints/crystal-diffusion-general): trained on the MP-20 subset's train split, Perov-5 val
and Carbon-24 val together, takes cells of up to 24 atoms of any element it saw, records each source,
says in bold that it saw 847 MP-20 structures, and reports its MP-20 subset val figures."""

from __future__ import annotations

import json

import torch

from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.scope import out_of_scope, training_scope
from hfmat.shipped import DIFFUSION_GENERAL, NAMES, shipped_model


def test_general_pipeline_records_its_sources_and_takes_every_cell_of_them():
    folder = shipped_model(DIFFUSION_GENERAL)
    assert DIFFUSION_GENERAL in NAMES
    den = json.loads((folder / "denoiser" / "config.json").read_text())
    assert den["max_atoms"] >= 24 and not den["predict_atom_types"]  # Carbon-24's largest cells
    record = json.loads((folder / "training_summary.json").read_text())
    sources = record["data"]["sources"]
    assert list(sources) == ["mp_20_subset:train", "perov_5:val", "carbon_24:val"]
    assert sum(s["train_crystals"] + s["eval_crystals"] for s in sources.values()) == 847 + 3787 + 2032
    assert all(s["train_crystals"] > 0 and s["eval_crystals"] > 0 for s in sources.values())
    scope = training_scope(folder)
    assert {"C", "Sr", "Ti", "O", "Li", "Fe", "P"} <= set(scope.elements)
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

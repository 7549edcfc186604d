"""The shipped Carbon-24 structure-prediction pipeline (hfmat/checkpoints/crystal-diffusion-carbon24):
found by its bare name, trained on Carbon-24's cell sizes, samples carbon cells reproducibly, and
its folder records no path of the machine it was trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.hub import resolve
from hfmat.shipped import DIFFUSION_CARBON24, shipped_model


@pytest.fixture(scope="module")
def pipe():
    pipe = CrystalDiffusionPipeline.from_pretrained(resolve(DIFFUSION_CARBON24))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_carbon24_denoiser_knows_carbon24_cell_sizes(pipe):
    config = pipe.denoiser.config
    assert not config.predict_atom_types  # structure prediction: the composition is the condition
    assert config.max_atoms == 24
    sizes = {n for n, p in enumerate(config.num_atoms_distribution) if p > 0}
    assert min(sizes) == 6 and sizes <= set(range(6, 25, 2))  # Carbon-24: even cells of 6-24 atoms


def test_carbon24_pipeline_samples_a_c8_cell_reproducibly(pipe):
    def sample():
        out = pipe(
            compositions=["C8"],
            num_samples=2,
            num_inference_steps=5,
            generator=torch.Generator().manual_seed(0),
        )
        return out.structures

    first, again = sample(), sample()
    assert [s.composition.formula for s in first] == ["C8", "C8"]
    for a, b in zip(first, again):
        np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix)
        np.testing.assert_allclose(a.frac_coords, b.frac_coords)
    assert not np.allclose(first[0].frac_coords, first[1].frac_coords)  # two samples, not one twice
    assert all(s.volume > 0 for s in first)


def test_carbon24_folder_names_its_data_and_no_local_path(assert_no_local_paths):
    folder = shipped_model(DIFFUSION_CARBON24)
    assert_no_local_paths(folder)
    card = (folder / "README.md").read_text()
    assert "Carbon-24" in card and "C8" in card
    assert "17.54" in card and "0.2759" in card  # DiffCSP's published k=1 figures next to the measured ones


def test_a_carbon24_card_compares_with_carbon24_figures_not_perov5(tmp_path, tiny_diffusion_pipeline):
    """The card's DiffCSP column and comparison paragraph follow the evaluation's dataset."""
    from hfmat.diffusion.card import CSP_COMPARISON, write_model_card

    folder = tmp_path / "pipe"
    tiny_diffusion_pipeline(False, num_atoms=8).save_pretrained(folder)  # structure prediction
    row = {"steps": 50, "corrector": "none", "k": 20, "match_rate": 40.0, "rmse": 0.3, "n": 100}
    text = write_model_card(
        folder, evaluation={"text": "x", "rows": [row], "dataset": "carbon_24"}
    ).read_text()
    assert "| 50 | none | 20 | 40.00 | 0.3000 | 100 | 88.47 % / 0.2192 |" in text
    assert "CDVAE 17.09 % / 0.2969 (k=1), 88.37 % / 0.2286 (k=20)" in text
    assert CSP_COMPARISON not in text and "98.60" not in text

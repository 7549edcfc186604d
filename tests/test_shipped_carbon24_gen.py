"""The shipped Carbon-24 de novo pipeline conditioned on energy_per_atom
(hfmat/checkpoints/crystal-diffusion-carbon24-gen-conditioned): found by its bare name, places only
carbon in Carbon-24's cell sizes, samples reproducibly with and without its condition, and its card
compares with the published Carbon-24 figures and records no path of the training machine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hfmat.diffusion import CrystalDiffusionPipeline
from hfmat.hub import resolve
from hfmat.shipped import DIFFUSION_CARBON24_GEN_CONDITIONED, NAMES, shipped_model


@pytest.fixture(scope="module")
def pipe():
    pipe = CrystalDiffusionPipeline.from_pretrained(resolve(DIFFUSION_CARBON24_GEN_CONDITIONED))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_it_is_a_de_novo_carbon_model_with_one_condition(pipe):
    config = pipe.denoiser.config
    assert DIFFUSION_CARBON24_GEN_CONDITIONED in NAMES
    assert config.predict_atom_types and config.elements == ["C"] and config.max_atoms == 24
    assert config.condition_every_layer  # stage 5 feeds the condition to every layer
    assert [c["name"] for c in config.conditions] == ["energy_per_atom"]
    sizes = {n for n, p in enumerate(config.num_atoms_distribution) if p > 0}
    assert min(sizes) == 6 and sizes <= set(range(6, 25, 2))


@pytest.mark.parametrize("guided", [False, True], ids=["unconditional", "guided"])
def test_samples_are_carbon_cells_and_reproducible(pipe, guided):
    kwargs = {"conditions": {"energy_per_atom": -154.4}, "guidance_scale": 2.0} if guided else {}

    def sample():
        out = pipe(num_samples=3, num_inference_steps=5, generator=torch.Generator().manual_seed(0), **kwargs)
        return out.structures

    first, again = sample(), sample()
    assert len(first) == 3
    for s in first:
        assert {el.symbol for el in s.composition.elements} == {"C"}
        assert len(s) % 2 == 0 and 6 <= len(s) <= 24 and s.volume > 0
    for a, b in zip(first, again):
        np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix)
        np.testing.assert_allclose(a.frac_coords, b.frac_coords)


def test_card_compares_with_carbon24_figures_and_names_no_local_path(assert_no_local_paths):
    folder = shipped_model(DIFFUSION_CARBON24_GEN_CONDITIONED)
    assert_no_local_paths(folder)
    card = (folder / "README.md").read_text()
    assert "Carbon-24" in card and "energy_per_atom" in card
    assert "97.27" in card and "83.08" in card  # DiffCSP's and CDVAE's published COV-P on Carbon-24

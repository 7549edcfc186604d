"""hfmat.composition.read_composition: the one composition reader of LM prompts and diffusion inputs."""

from __future__ import annotations

import pytest
from pymatgen.core import Composition, Species

from hfmat.composition import CompositionInputError, read_composition
from hfmat.diffusion.inputs import PipelineInputError, composition_atoms
from hfmat.lm.prompts import PromptError, composition_prompt

BAD = [
    ("", "empty composition"),
    ("   ", "empty composition"),
    ("Sr(((", "cannot parse composition 'Sr\\(\\(\\('"),
    ("SrXx3", "unknown element 'Xx'"),
    ("QqXx3", "unknown elements 'Qq', 'Xx'"),
    ("Sr0.5TiO3", "count of Sr is 0.5; counts must be positive whole numbers"),
    ("Na0Cl0", "has no atoms"),
    (3, "got int"),
]


@pytest.mark.parametrize("composition, message", BAD)
def test_bad_compositions_are_refused_with_the_same_reason_by_both_readers(composition, message):
    with pytest.raises(CompositionInputError, match=message):
        read_composition(composition)
    with pytest.raises(PromptError, match=message):
        composition_prompt(composition)
    with pytest.raises(PipelineInputError, match=f"^compositions\\[2\\]: .*{message}"):
        composition_atoms(composition, 20, "compositions[2]")


def test_the_formula_is_the_cell_content_in_its_own_order():
    assert read_composition(" Sr1Ti1O3 ") == read_composition("SrTiO3") == Composition("SrTiO3")
    assert composition_atoms("O3SrTi", 8) == [8, 8, 8, 38, 22]
    assert composition_prompt("O3SrTi") == composition_prompt("data_Sr1Ti1O3") == "data_Sr1Ti1O3\n"


def test_oxidation_states_are_read_as_their_elements():
    comp = Composition({Species("Fe", 2): 1, Species("O", -2): 1, Species("Fe", 3): 2})
    assert read_composition(comp) is comp
    assert composition_atoms(comp, 8) == [26, 8, 26, 26]
    assert composition_prompt(comp) == "data_Fe3O1\n"

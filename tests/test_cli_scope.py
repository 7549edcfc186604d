"""What a checkpoint was trained on (hfmat.scope), and the warning for a prompt outside it."""

from __future__ import annotations

import csv

from hfmat import shipped
from hfmat.data.catalog import BENCHMARKS
from hfmat.scope import out_of_scope, training_scope


def test_catalog_elements_are_those_of_the_perov5_files(shared_data):
    from pymatgen.core import Composition

    csv.field_size_limit(10**9)
    for split in ("val", "test"):
        with open(shared_data / "perov_5" / f"{split}.csv", newline="") as f:
            elements = {str(el) for row in csv.DictReader(f) for el in Composition(row["formula"])}
        assert elements == set(BENCHMARKS["perov_5"].elements), split


def test_shipped_models_record_perov5():
    lm = training_scope(shipped.shipped_model(shipped.LM))
    assert lm.dataset == "perov_5" and len(lm.elements) == 56 and lm.atom_counts == ()
    assert (lm.min_atoms, lm.max_atoms) == (5, 5)
    csp = training_scope(shipped.shipped_model(shipped.DIFFUSION_CSP))
    assert csp.dataset == "perov_5" and csp.atom_counts == (5,)


def test_out_of_scope_says_what_the_model_saw(tmp_path):
    lm = training_scope(shipped.shipped_model(shipped.LM))
    why = out_of_scope(lm, "NaCl")
    assert why.startswith("NaCl (2 atoms in the cell) is outside what the model was trained on")
    assert "Cl never occurs in its training data" in why and "its training cells have 5 atoms, not 2" in why
    assert "perov_5: Perovskite-like ABX3 crystals" in why and " Li Be B N O F " in why
    assert out_of_scope(lm, "SrTiO3") is None and out_of_scope(lm, "Sr1Ti1O3") is None
    assert "not 10" in out_of_scope(lm, "Sr2Ti2O6") and "never occurs" not in out_of_scope(lm, "Sr2Ti2O6")
    assert training_scope(tmp_path) is None  # a folder that records nothing: no warning

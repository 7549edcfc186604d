"""Canonical CIF writer and reader: format rules, determinism, round trip on samples of the data."""

from __future__ import annotations

import csv
import random
import re
import sys
import warnings

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from hfmat.chemistry import space_group_symbols
from hfmat.cif import CifError, cif_to_structure, parse_canonical, structure_to_cif
from hfmat.examples import example_structures

MATCHER = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)

SRTIO3 = """data_Sr1Ti1O3
_symmetry_space_group_name_H-M Pm-3m
_cell_length_a 3.9050
_cell_length_b 3.9050
_cell_length_c 3.9050
_cell_angle_alpha 90.0000
_cell_angle_beta 90.0000
_cell_angle_gamma 90.0000
_symmetry_Int_Tables_number 221
_chemical_formula_structural SrTiO3
_chemical_formula_sum 'Sr1 Ti1 O3'
_cell_volume 59.5474
_cell_formula_units_Z 1
loop_
_symmetry_equiv_pos_site_id
_symmetry_equiv_pos_as_xyz
1 'x, y, z'
loop_
_atom_site_type_symbol
_atom_site_label
_atom_site_symmetry_multiplicity
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Sr Sr0 1 0.0000 0.0000 0.0000 1
Ti Ti1 1 0.5000 0.5000 0.5000 1
O O2 3 0.0000 0.5000 0.5000 1
"""


def _sample(path, n, seed=0):
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(seed).shuffle(rows)
    return rows[:n]


@pytest.fixture(scope="module")
def examples():
    return example_structures()


def test_known_text_of_srtio3(examples_dir):
    structure = Structure.from_file(examples_dir / "SrTiO3_perovskite.cif")
    assert structure_to_cif(structure) == SRTIO3


def test_format_rules_on_examples(examples):
    for name, structure in examples.items():
        text = structure_to_cif(structure)
        assert text == structure_to_cif(structure), name  # byte-identical on every call
        assert text.endswith("\n") and not text.endswith("\n\n")
        assert "  " not in text and "\t" not in text and "-0.0000" not in text
        assert all(line == line.strip() for line in text.splitlines())
        first = text.splitlines()[0]
        assert re.fullmatch(r"data_(?:[A-Z][a-z]?\d+)+", first), first
        comp = structure.composition
        assert first == "data_" + comp.formula.replace(" ", "")
        parsed = parse_canonical(text)
        assert parsed.space_group_symbol == space_group_symbols()[parsed.space_group_number - 1]
        assert sum(s.multiplicity for s in parsed.sites) == len(structure)
        for site in parsed.sites:
            assert all(0.0 <= x < 1.0 for x in site.frac)
        assert text.count("loop_") == 2
        assert "1 'x, y, z'\nloop_" in text


def test_examples_round_trip(examples):
    for name, structure in examples.items():
        restored = cif_to_structure(structure_to_cif(structure))
        assert restored.composition == structure.composition, name
        rms = MATCHER.get_rms_dist(structure, restored)
        assert rms is not None and rms[0] < 0.01, (name, rms)


def test_translated_inverted_permuted_input_gives_same_text(examples):
    rng = np.random.default_rng(0)
    for name in ("SrTiO3_perovskite", "TiO2_rutile", "MgAl2O4_spinel", "ZnO_wurtzite", "Si_diamond"):
        structure = examples[name]
        moved = structure.copy()
        moved.translate_sites(list(range(len(moved))), rng.random(3))
        moved = Structure.from_sites([moved[i] for i in rng.permutation(len(moved))])
        inverted = Structure(structure.lattice, structure.species, -structure.frac_coords)
        assert structure_to_cif(moved) == structure_to_cif(structure), name
        assert structure_to_cif(inverted) == structure_to_cif(structure), name


def test_atom_props_block_and_decimals(examples):
    structure = examples["TiO2_rutile"]
    text = structure_to_cif(structure, atom_props=True)
    assert "_atom_type_electronegativity" in text
    assert "\nO 3.4400 0.6000 1.2600\n" in text
    assert MATCHER.fit(structure, cif_to_structure(text))
    short = structure_to_cif(structure, decimals=2)
    assert "_cell_length_a 4.59\n" in short
    assert "O O1 4 0.20 0.20 0.50 1" in short


def test_writer_refuses_bad_structures():
    lattice = Lattice.cubic(4.0)
    with pytest.raises(CifError, match="disordered"):
        structure_to_cif(Structure(lattice, [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]]))
    with pytest.raises(CifError, match="Structure"):
        structure_to_cif("not a structure")
    with pytest.raises(CifError, match="decimals"):
        structure_to_cif(Structure(lattice, ["Na"], [[0, 0, 0]]), decimals=20)


def test_oxidation_states_are_dropped():
    s = Structure(Lattice.cubic(5.64), ["Na+", "Cl-"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    text = structure_to_cif(s)
    assert "+" not in text and "Na Na0" in text


@pytest.mark.parametrize(
    ("name", "n"),
    [("perov_5/test.csv", 100), ("carbon_24/test.csv", 100), ("mp_20_subset/val.csv", 100)],
)
def test_round_trip_on_data_sample(shared_data, name, n):
    warnings.simplefilter("ignore")
    worst = 0.0
    for row in _sample(shared_data / name, n):
        original = Structure.from_str(row["cif"], fmt="cif")
        text = structure_to_cif(original)
        rms = MATCHER.get_rms_dist(original, cif_to_structure(text))
        assert rms is not None, (row["material_id"], text)
        worst = max(worst, rms[0])
    assert worst < 0.1


def test_reads_ordinary_cifs(examples_dir, examples):
    # pymatgen's P1 CIFs (identity loop + P 1) and a CIF with a full symmetry loop
    for path in sorted(examples_dir.glob("*.cif")):
        restored = cif_to_structure(path.read_text())
        assert MATCHER.fit(restored, examples[path.stem]), path.name
    from pymatgen.io.cif import CifWriter

    full = str(CifWriter(examples["TiO2_rutile"], symprec=0.1))
    assert full.count("'x, y, z'") == 1 and "_symmetry_equiv_pos_as_xyz" in full and "-x" in full
    restored = cif_to_structure(full)
    assert len(restored) == 6 and MATCHER.fit(restored, examples["TiO2_rutile"])


def test_spglib_failure_at_a_tolerance_falls_through_to_the_next(monkeypatch):
    """A cell where spglib finds no group at symprec 0.1 (as diffusion samples can be) is still
    written: the writer goes on to tighter tolerances, then to P1, and never raises for it."""
    from hfmat.cif import writer

    real = writer._render
    seen = []

    def render(structure, symprec, d, atom_props):
        seen.append(symprec)
        if symprec > 0.05:
            raise CifError(f"space-group analysis failed at symprec={symprec}")
        return real(structure, symprec, d, atom_props)

    monkeypatch.setattr(writer, "_render", render)
    s = example_structures()["TiO2_rutile"]
    text = structure_to_cif(s)
    assert seen[0] == 0.1 and len(seen) >= 2
    assert MATCHER.fit(s, cif_to_structure(text))

    monkeypatch.setattr(writer, "_render", lambda *a: (_ for _ in ()).throw(CifError("no group")))
    text = structure_to_cif(s)
    assert "_symmetry_space_group_name_H-M P1\n" in text
    assert MATCHER.fit(s, cif_to_structure(text))

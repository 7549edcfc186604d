"""check_validity: known answers for each check."""

from __future__ import annotations

import pytest
from pymatgen.core import Structure

from hfmat.cif import ValidityReport, check_validity, structure_to_cif
from hfmat.cif.validity import CHECKS


@pytest.fixture(scope="module")
def srtio3(examples_dir) -> str:
    return structure_to_cif(Structure.from_file(examples_dir / "SrTiO3_perovskite.cif"))


def _failed(report: ValidityReport) -> set[str]:
    return {c.name for c in report.failed()}


def test_good_structures_pass(examples_dir):
    for path in sorted(examples_dir.glob("*.cif")):
        report = check_validity(structure_to_cif(Structure.from_file(path)))
        assert report.valid, (path.name, str(report))
        assert [c.name for c in report.checks] == list(CHECKS)
        assert report.structure is not None and report.bond_fraction == 1.0
        assert report.bond_score == 1.0


def test_overlapping_atoms_fail_structural(srtio3):
    text = srtio3.replace(
        "O O2 3 0.0000 0.5000 0.5000 1", "O O2 3 0.0000 0.5000 0.5000 1\nO O3 3 0.0100 0.5000 0.5000 1"
    )
    text = text.replace("'Sr1 Ti1 O3'", "'Sr1 Ti1 O6'")
    report = check_validity(text)
    assert not report.valid
    assert not report["structural"].passed
    assert "shortest interatomic distance" in report["structural"].reason
    assert "below 0.5" in report["structural"].reason


def test_wrong_data_formula_fails_formula_consistency(srtio3):
    report = check_validity(srtio3.replace("data_Sr1Ti1O3", "data_Sr1Ti1O2"))
    assert _failed(report) == {"formula_consistency"}
    assert "data_" in report["formula_consistency"].reason


def test_wrong_structural_formula_fails(srtio3):
    report = check_validity(
        srtio3.replace("_chemical_formula_structural SrTiO3", "_chemical_formula_structural SrTiO2")
    )
    assert _failed(report) == {"formula_consistency"}
    assert "_chemical_formula_structural" in report["formula_consistency"].reason


def test_canonical_p1_of_a_cubic_crystal_fails_only_in_strict_mode(srtio3):
    # the same five atoms written as P1: spglib finds Pm-3m
    rows = "Sr Sr0 1 0.0000 0.0000 0.0000 1\nTi Ti1 1 0.5000 0.5000 0.5000 1\n"
    rows += "O O2 1 0.0000 0.5000 0.5000 1\nO O3 1 0.5000 0.0000 0.5000 1\nO O4 1 0.5000 0.5000 0.0000 1\n"
    text = srtio3.split("Sr Sr0")[0] + rows
    text = text.replace("H-M Pm-3m", "H-M P1").replace("_Tables_number 221", "_Tables_number 1")
    report = check_validity(text, mode="strict")
    assert _failed(report) == {"space_group"} and report.mode == "strict"
    reason = report["space_group"].reason
    assert "stated group 1" in reason and "221" in reason and "strict" in reason
    report = check_validity(text)  # P1 is a subgroup of every group
    assert report.valid and report.mode == "subgroup", str(report)
    assert "subgroup of group 221" in report["space_group"].reason


def test_wrong_multiplicity_fails(srtio3):
    report = check_validity(srtio3.replace("O O2 3 ", "O O2 2 "))
    assert "site_multiplicity" in _failed(report)
    assert (
        "O2" in report["site_multiplicity"].reason
        or "multiplicities sum" in report["site_multiplicity"].reason
    )


def test_multiplicity_disagreeing_with_orbit_fails(srtio3):
    # formula and multiplicities agree with each other, but the orbit of (0, 1/2, 1/2) has 3 sites
    text = srtio3.replace("O O2 3 ", "O O2 4 ").replace("'Sr1 Ti1 O3'", "'Sr1 Ti1 O4'")
    report = check_validity(text)
    assert "site_multiplicity" in _failed(report)
    assert "orbit" in report["site_multiplicity"].reason


def test_stretched_cell_fails_bond_lengths(srtio3):
    text = srtio3.replace("3.9050", "6.0000")
    report = check_validity(text)
    assert "bond_lengths" in _failed(report)
    assert report.bond_fraction is not None and report.bond_fraction < 1.0
    assert "of bonds reasonable" in report["bond_lengths"].reason
    # the soft score sees how far: a cell stretched less scores higher though it fails as well
    nearer = check_validity(srtio3.replace("3.9050", "5.6000"))
    assert "bond_lengths" in _failed(nearer)
    assert 0.0 <= report.bond_score < nearer.bond_score < 1.0


def test_cell_sanity_angle_and_length(srtio3):
    text = srtio3.replace("H-M Pm-3m", "H-M P1").replace("_Tables_number 221", "_Tables_number 1")
    text = text.replace("_cell_angle_gamma 90.0000", "_cell_angle_gamma 172.0000")
    report = check_validity(text)
    assert not report["cell_sanity"].passed and "gamma" in report["cell_sanity"].reason
    long = srtio3.replace("3.9050", "1200.0000")
    report = check_validity(long)
    assert not report["cell_sanity"].passed and "1200" in report["cell_sanity"].reason


@pytest.mark.parametrize("text", ["", "garbage", "data_X\n_cell_length_a 3\n", "\x00\x01\x02"])
def test_bad_text_gives_invalid_report(text):
    report = check_validity(text)
    assert not report.valid and report.structure is None
    assert [c.name for c in report.checks] == ["parse"]
    assert report.checks[0].reason


def test_report_str_lists_each_check(srtio3):
    out = str(check_validity(srtio3))
    assert out.startswith("valid: True (space-group check: subgroup mode)")
    for name in CHECKS:
        assert f"PASS {name}:" in out

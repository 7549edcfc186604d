"""The space_group check's two modes: "subgroup" (default: any CIF whose structure has the stated
group passes, P1 always) and CrystaLLM's "strict" (stated == found), on textbook examples, raw
Materials Project P1 CIFs and relabelled CIFs; ``hfmat cif check --strict/--json``."""

from __future__ import annotations

import csv
import json

import pytest
from pymatgen.io.cif import CifWriter

from hfmat.cif import check_validity, check_validity_many, cif_to_structure
from hfmat.cif.export import structure_to_standard_cif
from hfmat.cif.reader import _block, _space_group
from hfmat.cif.symmetry import is_subgroup
from hfmat.cif.validity import formula_consistency, space_group
from hfmat.cli import main
from hfmat.examples import example_structures


@pytest.fixture(scope="module")
def examples():
    return example_structures()


def _relabel(structure, symbol: str, number: int) -> str:
    """``structure`` written with its full symmetry-operation loop (CifWriter at symprec 0.1),
    its space-group symbol and number then replaced: the operations stay, the label lies."""
    text = str(CifWriter(structure, symprec=0.1))
    lines = []
    for line in text.splitlines():
        if line.startswith("_symmetry_space_group_name_H-M"):
            line = f"_symmetry_space_group_name_H-M   {symbol}"
        elif line.startswith("_symmetry_Int_Tables_number"):
            line = f"_symmetry_Int_Tables_number   {number}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_subgroup_facts():
    assert is_subgroup(1, 230) and is_subgroup(221, 221)
    assert is_subgroup(123, 221) and is_subgroup(99, 221)  # P4/mmm, P4mm < Pm-3m
    assert is_subgroup(227, 225)  # Fd-3m < Fm-3m with a doubled cell (klassengleiche)
    assert not is_subgroup(221, 123) and not is_subgroup(191, 221) and not is_subgroup(225, 227)
    with pytest.raises(ValueError, match="outside 1..230"):
        is_subgroup(0, 221)


def test_examples_as_standard_p1_cifs(examples):
    for name, structure in examples.items():
        text = structure_to_standard_cif(structure)
        report = check_validity(text)
        assert report.valid and report.mode == "subgroup", (name, str(report))
        strict = check_validity(text, mode="strict")
        if name == "LiFeO2_P1":  # triclinic P1: stated == found
            assert strict.valid, str(strict)
        else:  # strict mode fails every P1 CIF of a crystal with more symmetry, e.g. cubic SrTiO3
            assert {c.name for c in strict.failed()} == {"space_group"}, (name, str(strict))
            assert "stated group 1" in strict["space_group"].reason


def test_materials_project_p1_cifs_pass_in_default_mode(shared_data):
    csv.field_size_limit(10**9)
    with open(shared_data / "mp_20_subset" / "val.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 100
    stated_p1 = 0
    for row in rows:
        _, block = _block(row["cif"])
        stated = _space_group(block)[0]
        stated_p1 += stated == 1
        result = space_group(cif_to_structure(row["cif"]), stated)
        assert result.passed, (row["material_id"], result.reason)
        # pymatgen names a block by the reduced formula (data_Zn3N2 for 'Zn12 N8'): not an error
        data_name = block.header
        fields = [block.data.get(t) for t in ("_chemical_formula_sum", "_chemical_formula_structural")]
        assert formula_consistency(data_name, *fields, None, exact=False).passed, row["material_id"]
    assert stated_p1 == len(rows)  # every one is a P1 CIF


def test_stated_group_the_structure_lacks_fails_in_both_modes(examples):
    srtio3, rutile = examples["SrTiO3_perovskite"], examples["TiO2_rutile"]
    for text, stated in (
        (_relabel(srtio3, "P6/mmm", 191), 191),  # hexagonal: not a subgroup of Pm-3m
        (_relabel(rutile, "Pm-3m", 221), 221),  # cubic label on a tetragonal crystal
    ):
        for mode in ("subgroup", "strict"):
            report = check_validity(text, mode=mode)
            assert {c.name for c in report.failed()} == {"space_group"}, (mode, str(report))
            assert f"stated group {stated}" in report["space_group"].reason
            assert f"{mode} mode" in report["space_group"].reason
    # a true subgroup label (P4/mmm on cubic SrTiO3) passes by default, fails strict mode
    text = _relabel(srtio3, "P4/mmm", 123)
    assert check_validity(text).valid
    assert not check_validity(text, mode="strict")["space_group"].passed


def test_mode_is_checked_and_carried_by_batch(examples):
    text = structure_to_standard_cif(examples["NaCl_rocksalt"])
    with pytest.raises(ValueError, match="mode must be one of subgroup, strict"):
        check_validity(text, mode="lenient")
    results = check_validity_many([text], num_workers=1, progress=False, mode="strict")
    assert results[0].value.mode == "strict" and not results[0].value.valid


def test_cli_check_modes_and_json(examples, tmp_path, capsys):
    path = tmp_path / "SrTiO3.cif"
    path.write_text(structure_to_standard_cif(examples["SrTiO3_perovskite"]))
    assert main(["cif", "check", str(path)]) == 0
    assert f"{path}: valid (subgroup mode)" in capsys.readouterr().out
    assert main(["cif", "check", "--strict", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: INVALID (strict mode)" in out and "FAIL space_group: stated group 1" in out
    assert main(["cif", "check", "--strict", "--json", str(path)]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["file"] == str(path) and record["mode"] == "strict" and record["valid"] is False
    assert {c["name"]: c["passed"] for c in record["checks"]}["space_group"] is False

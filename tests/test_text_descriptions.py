"""hfmat.data.descriptions: the description columns of known structures."""

from __future__ import annotations

import math

import pytest
from datasets import Dataset
from pymatgen.core import Structure

from hfmat.data import DataWarning, load_crystal_dataset
from hfmat.data.descriptions import TEXT_COLUMNS, add_descriptions, describe_structure, property_phrase


def test_srtio3_from_examples(examples_dir):
    row = describe_structure(Structure.from_file(examples_dir / "SrTiO3_perovskite.cif"))
    assert (row["crystal_system"], row["spacegroup_symbol"], row["spacegroup_number"]) == (
        "cubic",
        "Pm-3m",
        221,
    )
    assert row["structure_type"] == "perovskite"
    assert row["text_composition"] == "SrTiO3"
    assert row["text_system"] == "SrTiO3, a cubic crystal"
    assert row["text_sentence"] == (
        "SrTiO3 crystallizes in the cubic Pm-3m space group (No. 221) with the perovskite structure."
    )


def test_column_on_a_dataset_names_the_properties(examples_dir):
    ds = load_crystal_dataset(examples_dir)["train"]
    ds = ds.add_column(
        "dir_gap", [2.07 if m == "SrTiO3_perovskite" else float("nan") for m in ds["material_id"]]
    )
    out = add_descriptions(ds)
    assert set(TEXT_COLUMNS) <= set(out.column_names) and len(out) == len(ds)
    rows = {r["material_id"]: r for r in out}
    assert rows["SrTiO3_perovskite"]["text_sentence"].endswith(
        "with the perovskite structure. It has a direct band gap of 2.1 eV."
    )
    assert rows["ZnO_wurtzite"]["text_system"] == "ZnO, a hexagonal crystal"
    assert rows["ZnO_wurtzite"]["structure_type"] == "wurtzite"
    assert rows["ZnO_wurtzite"]["text_sentence"].endswith(
        "(No. 186) with the wurtzite structure."
    )  # NaN left out
    assert rows["LiFeO2_P1"]["structure_type"] == "" and rows["LiFeO2_P1"]["spacegroup_symbol"] == "P1"


def test_bad_rows_are_dropped_and_bad_properties_named():
    good = Structure.from_spacegroup(
        "Fm-3m", [[5.64, 0, 0], [0, 5.64, 0], [0, 0, 5.64]], ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    ds = Dataset.from_dict(
        {"material_id": ["a", "b"], "cif": [good.to(fmt="cif"), "not a cif"], "heat_ref": [-1.234, 0.0]}
    )
    with pytest.warns(DataWarning, match="b: unparseable CIF"):
        out, stats = add_descriptions(ds, return_stats=True)
    assert out["material_id"] == ["a"] and "b" in stats.skipped
    assert out[0]["text_sentence"].endswith("rocksalt structure. It has a formation heat of -1.23 eV/atom.")
    with pytest.raises(ValueError, match="no phrase"):
        add_descriptions(ds, properties=["colour"])
    with pytest.raises(ValueError, match="not columns"):
        add_descriptions(ds, properties=["dir_gap"])


def test_property_phrase():
    assert property_phrase("dir_gap", 2.07) == "a direct band gap of 2.1 eV"
    assert property_phrase("heat_ref", -0.001) == "a formation heat of 0.00 eV/atom"
    assert property_phrase("energy_per_atom", math.nan) == "" and property_phrase("dir_gap", None) == ""

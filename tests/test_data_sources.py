"""hfmat.data.sources: several datasets as one training set (labelled rows, per-source hold-out,
repeats) and its clear errors."""

from __future__ import annotations

import pytest
from csv_head import head_csv

from hfmat.data import DataError
from hfmat.data.sources import (
    Source,
    holdout_by_source,
    load_sources,
    parse_sources,
    repeat_by_source,
    source_counts,
)


@pytest.fixture(scope="module")
def two_sources(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    perov = head_csv(shared_data / "perov_5" / "val.csv", 12, folder / "perov.csv")
    carbon = head_csv(shared_data / "carbon_24" / "val.csv", 6, folder / "carbon.csv")
    return [{"dataset": str(perov), "name": "perov"}, {"dataset": str(carbon), "name": "carbon", "repeat": 2}]


def test_sources_are_concatenated_with_their_labels_and_the_normalised_columns(two_sources):
    ds = load_sources(two_sources)
    assert source_counts(ds) == {"perov:train": 12, "carbon:train": 6}
    assert ds.column_names == ["material_id", "cif", "formula", "num_atoms", "spacegroup", "source"]
    assert set(ds.filter(lambda r: r["source"] == "carbon:train")["formula"]) == {"C"}


def test_holdout_draws_from_every_source_in_proportion_and_is_seeded(two_sources):
    ds = load_sources(two_sources)
    rest, held = holdout_by_source(ds, 6, seed=0)
    assert source_counts(held) == {"perov:train": 4, "carbon:train": 2}
    assert source_counts(rest) == {"perov:train": 8, "carbon:train": 4}
    assert not set(rest["material_id"]) & set(held["material_id"])
    again = holdout_by_source(ds, 6, seed=0)[1]
    other = holdout_by_source(ds, 6, seed=1)[1]
    assert again["material_id"] == held["material_id"] != other["material_id"]
    with pytest.raises(DataError, match="eval_holdout 18"):
        holdout_by_source(ds, 18, seed=0)


def test_repeat_counts_a_sources_rows_that_many_times(two_sources):
    sources = parse_sources(two_sources)
    ds = repeat_by_source(load_sources(sources), sources)
    assert source_counts(ds) == {"perov:train": 12, "carbon:train": 12}


def test_parse_sources_fills_data_dir_and_names_bad_entries():
    (s,) = parse_sources([{"dataset": "perov_5", "split": "val"}], data_dir="data")
    assert s == Source("perov_5", "val", "data") and s.label == "perov_5:val"
    with pytest.raises(DataError, match=r"datasets\[1\]: unknown key\(s\) \['splt'\]"):
        parse_sources([{"dataset": "perov_5"}, {"dataset": "carbon_24", "splt": "val"}])
    with pytest.raises(DataError, match=r"datasets\[0\]: repeat must be a whole number"):
        parse_sources([{"dataset": "perov_5", "repeat": 0}])
    with pytest.raises(DataError, match="listed more than once"):
        parse_sources([{"dataset": "perov_5"}, {"dataset": "perov_5"}])
    with pytest.raises(DataError, match="non-empty list"):
        parse_sources({"dataset": "perov_5"})


def test_keep_columns_keeps_every_sources_properties_with_none_where_a_source_lacks_one(two_sources):
    from hfmat.data.descriptions import add_descriptions

    ds = load_sources(two_sources, keep_columns=True)
    assert ds.column_names[:5] == ["material_id", "cif", "formula", "num_atoms", "spacegroup"]
    assert set(ds.column_names[5:]) == {
        "heat_all",
        "heat_ref",
        "dir_gap",
        "ind_gap",
        "energy_per_atom",
        "source",
    }
    perov = ds.filter(lambda r: r["source"] == "perov:train")
    carbon = ds.filter(lambda r: r["source"] == "carbon:train")
    assert perov["energy_per_atom"] == [None] * 12 and None not in perov["dir_gap"]
    assert carbon["dir_gap"] == [None] * 6 and None not in carbon["energy_per_atom"]
    # the sentences name each source's own properties and leave the missing ones out
    described = add_descriptions(ds)
    by_source = {
        label: described.filter(lambda r, label=label: r["source"] == label)["text_sentence"]
        for label in source_counts(ds)
    }
    assert all("direct band gap of" in t and "energy of" not in t for t in by_source["perov:train"])
    assert all("an energy of -" in t and "band gap" not in t for t in by_source["carbon:train"])
    assert all(t.startswith("C crystallizes in the ") for t in by_source["carbon:train"])


def test_keep_columns_as_a_list_and_its_errors(two_sources):
    ds = load_sources(two_sources, keep_columns=["energy_per_atom"])
    assert ds.column_names[-2:] == ["energy_per_atom", "source"]
    assert load_sources(two_sources).column_names[-1] == "source"  # the default keeps none
    with pytest.raises(DataError, match=r"keep_columns: \['band_gap'\] are columns of none of the sources"):
        load_sources(two_sources, keep_columns=["band_gap"])
    with pytest.raises(DataError, match="keep_columns: expected True or a list"):
        load_sources(two_sources, keep_columns="dir_gap")

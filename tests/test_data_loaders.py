"""hfmat.data loaders: CDVAE CSVs, CIF folders, Hub-style folders, cached repos; the Hub layout."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset
from huggingface_hub import DatasetCard

from hfmat.data import (
    NORMALISED_COLUMNS,
    DataError,
    DataNotFoundError,
    DataWarning,
    load_crystal_dataset,
    to_hub_layout,
)

csv.field_size_limit(sys.maxsize)

BAD_CIF = "data_broken\n_cell_length_a 3.0\nthis is not a CIF loop\n"


def write_subset(src: Path, dst: Path, n: int, extra_rows: list[dict] | None = None) -> list[dict]:
    """The header and first ``n`` rows of a CDVAE CSV (plus ``extra_rows``), written to ``dst``."""
    with src.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = [row for _, row in zip(range(n), reader)]
    rows += extra_rows or []
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


@pytest.fixture(scope="module")
def cdvae_dir(shared_data, tmp_path_factory) -> Path:
    """A CDVAE-layout data folder: perov_5/{val,test} and carbon_24/val, a few rows each."""
    root = tmp_path_factory.mktemp("cdvae")
    write_subset(shared_data / "perov_5" / "val.csv", root / "perov_5" / "val.csv", 12)
    write_subset(shared_data / "perov_5" / "test.csv", root / "perov_5" / "test.csv", 8)
    write_subset(shared_data / "carbon_24" / "val.csv", root / "carbon_24" / "val.csv", 10)
    return root


def test_mp_20_subset_val(shared_data):
    ds = load_crystal_dataset("mp_20", data_dir=shared_data / "mp_20_subset", splits=["val"])
    assert list(ds) == ["val"]
    assert len(ds["val"]) == 123  # every row of the file is a good CIF
    val = ds["val"]
    assert tuple(val.column_names[:5]) == NORMALISED_COLUMNS
    for kept in ("formation_energy_per_atom", "band_gap", "e_above_hull"):
        assert kept in val.column_names
    assert not any(c.startswith("Unnamed") for c in val.column_names)
    assert "pretty_formula" not in val.column_names and "spacegroup.number" not in val.column_names
    with (shared_data / "mp_20_subset" / "val.csv").open(newline="") as f:
        source = list(csv.DictReader(f))
    row = val[0]
    assert row["material_id"] == source[0]["material_id"]
    assert row["formula"] == source[0]["pretty_formula"]
    assert row["spacegroup"] == int(source[0]["spacegroup.number"])
    assert row["formation_energy_per_atom"] == pytest.approx(float(source[0]["formation_energy_per_atom"]))
    assert max(val["num_atoms"]) <= 20 and min(val["num_atoms"]) >= 1
    assert val.info.license == "cc-by-4.0"


def test_perov_and_carbon_subsets(cdvae_dir):
    perov = load_crystal_dataset("perov_5", data_dir=cdvae_dir)  # parent of perov_5/ works
    assert sorted(perov) == ["test", "val"]  # train.csv absent: the splits that exist
    assert (len(perov["val"]), len(perov["test"])) == (12, 8)
    row = perov["val"][0]
    assert row["material_id"] == "18517" and isinstance(row["material_id"], str)
    assert row["formula"] == "CdCuN3" and row["num_atoms"] == 5
    assert row["spacegroup"] == 221  # computed by spglib at symprec 0.1 (a near-cubic perovskite)
    assert row["heat_ref"] == pytest.approx(2.709152583232041)
    assert set(perov["val"].column_names) == {
        *NORMALISED_COLUMNS,
        "heat_all",
        "heat_ref",
        "dir_gap",
        "ind_gap",
    }
    assert set(perov["val"]["num_atoms"]) == {5}

    carbon = load_crystal_dataset("carbon_24", data_dir=cdvae_dir / "carbon_24", splits=["val"])
    assert list(carbon) == ["val"]
    assert set(carbon["val"]["formula"]) == {"C"}
    assert set(carbon["val"].column_names) == {*NORMALISED_COLUMNS, "energy_per_atom"}
    assert all(6 <= n <= 24 for n in carbon["val"]["num_atoms"])
    with pytest.raises(DataNotFoundError, match="train"):
        load_crystal_dataset("carbon_24", data_dir=cdvae_dir, splits=["train"])


def test_bad_rows_are_skipped_counted_and_listed(shared_data, tmp_path):
    bad = [
        {"": "9", "material_id": "bad-parse", "cif": BAD_CIF, "energy_per_atom": "1.0"},
        {"": "10", "material_id": "bad-empty", "cif": "", "energy_per_atom": "2.0"},
    ]
    rows = write_subset(shared_data / "carbon_24" / "val.csv", tmp_path / "carbon_24" / "test.csv", 5, bad)
    with pytest.warns(DataWarning, match=r"skipped 2 of 7 row\(s\).*bad-parse.*bad-empty"):
        ds, stats = load_crystal_dataset("carbon_24", data_dir=tmp_path, return_stats=True)
    assert len(ds["test"]) == 5
    assert ds["test"]["material_id"] == [r["material_id"] for r in rows[:5]]
    st = stats["test"]
    assert (st.rows_in, st.rows_kept, st.num_skipped) == (7, 5, 2)
    assert st.skipped["bad-empty"] == "empty CIF"
    assert st.skipped["bad-parse"].startswith("unparseable CIF")


def test_clear_errors(tmp_path, shared_data):
    with pytest.raises(DataNotFoundError, match="data_dir"):
        load_crystal_dataset("perov_5")
    with pytest.raises(DataNotFoundError, match="not a folder"):
        load_crystal_dataset("perov_5", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match=r"train\.csv, val\.csv, test\.csv"):
        load_crystal_dataset("mp_20", data_dir=shared_data)  # shared_data holds mp_20_subset, not mp_20
    (tmp_path / "perov_5").mkdir()
    (tmp_path / "perov_5" / "val.csv").write_text("material_id,structure\n1,abc\n")
    with pytest.raises(DataError, match=r"val\.csv.*no 'cif' column"):
        load_crystal_dataset("perov_5", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="not a benchmark name"):
        load_crystal_dataset("no_such_thing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=r"no \.cif files"):
        load_crystal_dataset(empty)


def test_cif_folder_one_split(examples_dir):
    ds = load_crystal_dataset(examples_dir)
    assert list(ds) == ["train"]
    names = sorted(p.stem for p in examples_dir.glob("*.cif"))
    assert sorted(ds["train"]["material_id"]) == names and len(names) >= 7
    by_id = {r["material_id"]: r for r in ds["train"]}
    assert by_id["SrTiO3_perovskite"]["formula"] == "SrTiO3"
    assert by_id["SrTiO3_perovskite"]["spacegroup"] == 221
    assert by_id["SrTiO3_perovskite"]["num_atoms"] == 5
    assert by_id["TiO2_rutile"]["spacegroup"] == 136
    assert by_id["NaCl_rocksalt"]["spacegroup"] == 225


def test_cif_folder_with_split_subfolders_and_a_bad_file(examples_dir, tmp_path):
    files = sorted(examples_dir.glob("*.cif"))
    for split, chosen in (("train", files[:4]), ("test", files[4:])):
        (tmp_path / split).mkdir()
        for f in chosen:
            shutil.copy(f, tmp_path / split / f.name)
    (tmp_path / "test" / "garbage.cif").write_text(BAD_CIF)
    with pytest.warns(DataWarning, match="garbage"):
        ds, stats = load_crystal_dataset(tmp_path, return_stats=True)
    assert sorted(ds) == ["test", "train"]
    assert len(ds["train"]) == 4 and len(ds["test"]) == len(files) - 4
    assert list(stats["test"].skipped) == ["garbage"]
    assert stats["train"].num_skipped == 0
    (tmp_path / "loose.cif").write_text(files[0].read_text())
    with pytest.raises(DataError, match="both directly and in sub-folders"):
        load_crystal_dataset(tmp_path)


def test_hub_layout_round_trip(cdvae_dir, tmp_path):
    ds = load_crystal_dataset("perov_5", data_dir=cdvae_dir)
    card_path = to_hub_layout(ds, tmp_path / "hub", name="perov_5", notes="A few rows only.")
    text = card_path.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "mit"
    config = meta["configs"][0]
    assert config["config_name"] == "default"
    assert {d["split"]: d["path"] for d in config["data_files"]} == {
        "val": "data/val-00000-of-00001.parquet",
        "test": "data/test-00000-of-00001.parquet",
    }
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {"val": 12, "test": 8}
    assert "| val | 12 | 3787 |" in text and "txie-93/cdvae" in text and "`heat_ref`" in text
    for column in ds["val"].column_names:
        assert f"| `{column}` |" in text
    assert 'load_dataset("hfmat/perov-5")' in text and "Xie, Tian" in text  # CDVAE cited
    assert DatasetCard.load(card_path).data.to_dict()["hfmat"]["repo_id"] == "hfmat/perov-5"

    back = load_dataset(str(tmp_path / "hub"))
    assert sorted(back) == ["test", "val"]
    for split in ds:
        assert back[split].features == ds[split].features
        assert back[split].to_list() == ds[split].to_list()
    again = load_crystal_dataset(tmp_path / "hub")
    assert again["test"].to_list() == ds["test"].to_list()


def test_dataset_repo_from_local_cache(cdvae_dir, tmp_path, hf_cache):
    ds = load_crystal_dataset("carbon_24", data_dir=cdvae_dir)
    to_hub_layout(ds, tmp_path / "hub", name="carbon-mini", license="mit", source="test subset")
    text = (tmp_path / "hub" / "README.md").read_text()
    assert 'load_dataset("my-org/carbon-mini")' in text and "Xie, Tian" not in text  # not a benchmark
    hf_cache("hfmat-test/carbon-mini", tmp_path / "hub", repo_type="dataset")
    loaded = load_crystal_dataset("hfmat-test/carbon-mini")
    assert loaded["val"].to_list() == ds["val"].to_list()
    with pytest.raises(DataNotFoundError, match="not in the local Hugging Face cache"):
        load_crystal_dataset("hfmat-test/never-downloaded")


def test_cdvae_folder_given_as_a_path(cdvae_dir):
    ds = load_crystal_dataset(cdvae_dir / "perov_5")
    assert sorted(ds) == ["test", "val"]  # the CDVAE split names, not datasets' "validation"
    assert ds["val"][0]["material_id"] == "18517"


def test_parquet_file_with_integer_ids_and_missing_spacegroups(tmp_path, examples_dir):
    from datasets import Dataset

    files = sorted(examples_dir.glob("*.cif"))[:3]
    table = Dataset.from_dict(
        {
            "material_id": [1, 2, 3],
            "cif": [f.read_text() for f in files],
            "spacegroup": [None, 225.0, None],
            "band_gap": [0.5, 1.0, 1.5],
        }
    )
    table.to_parquet(str(tmp_path / "mine.parquet"))
    ds = load_crystal_dataset(tmp_path / "mine.parquet")["train"]
    assert ds["material_id"] == ["1", "2", "3"]
    assert ds[1]["spacegroup"] == 225  # given
    assert all(1 <= sg <= 230 for sg in ds["spacegroup"])  # missing ones computed
    assert ds["band_gap"] == [0.5, 1.0, 1.5]

"""hfmat.data featurization: canonical CIF + token ids for the LM, Niggli graphs for diffusion."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from hfmat.cif import cif_to_structure, structure_to_cif
from hfmat.data import (
    DataError,
    DataWarning,
    GraphCollator,
    add_canonical_cif,
    featurize_diffusion,
    featurize_lm,
    load_crystal_dataset,
    parse_cif,
    structure_to_graph,
    tokenize_cifs,
)
from hfmat.tokenization import load_tokenizer

csv.field_size_limit(sys.maxsize)

DISORDERED_CIF = Structure(
    Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
).to(fmt="cif")


@pytest.fixture(scope="module")
def perov(shared_data, tmp_path_factory) -> DatasetDict:
    """The first 16 perov_5 validation rows plus one disordered (parseable, not featurizable) row."""
    folder = tmp_path_factory.mktemp("perov_5")
    with (shared_data / "perov_5" / "val.csv").open(newline="") as f:
        reader = csv.reader(f)
        rows = [row for _, row in zip(range(17), reader)]  # header + 16 rows
    with (folder / "val.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    head = load_crystal_dataset("perov_5", data_dir=folder)["val"]
    extra = Dataset.from_dict({"material_id": ["disordered-1"], "cif": [DISORDERED_CIF]})
    extra = load_crystal_dataset_from(extra)
    rows = head.to_list() + [{**{c: None for c in head.column_names}, **extra[0]}]
    return DatasetDict({"val": Dataset.from_list(rows, features=head.features)})


def load_crystal_dataset_from(dataset: Dataset) -> Dataset:
    from hfmat.data.loaders import normalise

    return normalise(dataset)[0]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_lm_featurization(perov, tokenizer):
    with pytest.warns(DataWarning, match=r"disordered-1: canonical CIF failed"):
        lm, stats = featurize_lm(perov, tokenizer, return_stats=True)
    val = lm["val"]
    assert len(val) == 16 and stats["val"].rows_in == 17 and stats["val"].rows_kept == 16
    assert list(stats["val"].skipped) == ["disordered-1"]
    for row in val.select(range(4)):
        structure, _ = parse_cif(row["cif"])
        assert row["canonical_cif"] == structure_to_cif(structure, symprec=0.1, decimals=4)
        assert row["canonical_cif"].startswith("data_") and row["canonical_cif"].endswith("1\n")
        ids = row["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.pad_token_id not in ids and tokenizer.unk_token_id not in ids
        assert row["length"] == len(ids)
        assert tokenizer.decode(ids[1:-1]) == row["canonical_cif"]
        assert StructureMatcher().fit(cif_to_structure(row["canonical_cif"]), structure)


def test_lm_max_length_skips_long_rows(perov, tokenizer):
    canon = add_canonical_cif(perov["val"].select(range(6)))
    lengths = tokenize_cifs(canon, tokenizer)["length"]
    limit = sorted(lengths)[2]
    with pytest.warns(DataWarning, match="max_length"):
        short, stats = tokenize_cifs(canon, tokenizer, max_length=limit, return_stats=True)
    assert all(n <= limit for n in short["length"])
    assert stats["data"].num_skipped == sum(n > limit for n in lengths) > 0
    assert all("max_length" in reason for reason in stats["data"].skipped.values())
    with pytest.raises(DataError, match="add_canonical_cif first"):
        tokenize_cifs(perov["val"], tokenizer)


def test_featurization_is_cached_and_parallel_matches_serial(perov, tokenizer):
    small = DatasetDict({"val": perov["val"].select(range(8))})
    first = featurize_lm(small, tokenizer)
    second = featurize_lm(small, tokenizer)
    assert second["val"]._fingerprint == first["val"]._fingerprint
    assert second["val"].cache_files == first["val"].cache_files  # read back, not recomputed
    other = featurize_lm(small, tokenizer, decimals=3)
    assert other["val"]._fingerprint != first["val"]._fingerprint
    assert "0.0000" not in other["val"][0]["canonical_cif"]
    # an in-memory copy has another fingerprint and no cache file: num_proc=2 really computes
    fresh = DatasetDict({"val": Dataset.from_list(small["val"].to_list(), features=small["val"].features)})
    parallel = featurize_lm(fresh, tokenizer, num_proc=2)
    assert parallel["val"]._fingerprint != first["val"]._fingerprint
    assert parallel["val"]["input_ids"] == first["val"]["input_ids"]
    assert parallel["val"]["material_id"] == first["val"]["material_id"]


def test_diffusion_featurization_and_collation(perov):
    with pytest.warns(DataWarning, match="disordered-1: structure .* is disordered"):
        graphs, stats = featurize_diffusion(perov, return_stats=True)
    val = graphs["val"]
    assert len(val) == 16 and list(stats["val"].skipped) == ["disordered-1"]
    row = val[3]
    structure, _ = parse_cif(row["cif"])
    expected = structure_to_graph(structure)
    assert row["atom_types"] == expected["atom_types"] and row["num_atoms"] == 5
    assert np.allclose(row["lattice"], expected["lattice"]) and np.allclose(
        row["frac_coords"], expected["frac_coords"]
    )
    batch = GraphCollator(properties=["heat_ref"])(val.with_format("torch").select(range(4)))
    assert batch["atom_types"].shape == (20,) and batch["lattices"].shape == (4, 3, 3)
    assert batch["batch"].tolist() == [i for i in range(4) for _ in range(5)]
    assert batch["heat_ref"].tolist() == pytest.approx(val["heat_ref"][:4])


def test_featurize_examples_folder(examples_dir, tokenizer):
    ds = load_crystal_dataset(examples_dir)
    lm = featurize_lm(ds, tokenizer)
    by_id = dict(zip(lm["train"]["material_id"], lm["train"]["canonical_cif"]))
    assert by_id["TiO2_rutile"].splitlines()[1] == "_symmetry_space_group_name_H-M P4_2/mnm"
    assert by_id["SrTiO3_perovskite"].startswith("data_Sr1Ti1O3\n")
    graphs = featurize_diffusion(ds)
    assert sorted(graphs["train"]["num_atoms"]) == sorted(ds["train"]["num_atoms"])
    with pytest.raises(DataError, match="no 'cif' column"):
        featurize_diffusion(Dataset.from_dict({"material_id": ["x"]}))

"""Generation metrics with known answers: SMACT verdicts, EMD of a set with itself, COV, uniqueness,
novelty, and bad samples."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from hfmat.evaluation import coverage, generation_metrics, smact_valid
from hfmat.evaluation.magpie_scaler import MAGPIE_MEANS, scale_magpie


@pytest.fixture(autouse=True)
def _fingerprint_cache(tmp_path, monkeypatch):
    """Keep the reference-fingerprint cache out of the home folder."""
    monkeypatch.setenv("HFMAT_CACHE", str(tmp_path / "hfmat-cache"))


def perovskite(a: float = 3.9, species=("Sr", "Ti", "O")) -> Structure:
    A, B, X = species
    return Structure(
        Lattice.cubic(a),
        [A, B, X, X, X],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def rock_salt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(
    "formula, valid",
    [
        ("NaCl", True),
        ("NaCl2", False),
        ("CuZn", True),
        ("Cu3Au", True),
        ("SrTiO3", True),
        ("C", True),
        ("KCl2", False),
        ("Fe2O3", True),
    ],
)
def test_smact_verdicts(formula, valid):
    assert smact_valid(formula) is valid
    assert smact_valid(Composition(formula) * 2) is valid  # the verdict is per ratio, not per cell


def test_smact_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        smact_valid(Composition({}))


def test_magpie_scaler_shape_and_nan():
    x = np.array([MAGPIE_MEANS]).copy()
    x[0, 3] = np.nan
    out = scale_magpie(x)
    assert out.shape == (1, 132) and np.all(out == 0)
    with pytest.raises(ValueError, match="132"):
        scale_magpie(np.zeros((2, 5)))


def test_self_comparison_and_validity(tmp_path):
    structures = [perovskite(3.9), perovskite(4.0, ("Ba", "Zr", "O")), rock_salt()]
    m = generation_metrics(
        structures,
        structures,
        structures,
        dataset="perov_5",
        workers=1,
        progress=False,
        fingerprint_cache=str(tmp_path),
    )
    assert m["structural_validity"] == m["compositional_validity"] == m["validity"] == 1.0
    assert m["wdist_density"] == 0.0 and m["wdist_num_elements"] == 0.0
    assert m["cov_recall"] == 1.0 and m["cov_precision"] == 1.0
    assert m["uniqueness"] == 1.0 and m["novelty"] == 0.0 and m["unique_and_novel"] == 0.0


def test_uniqueness_novelty_and_bad_samples():
    a, b = perovskite(3.9), rock_salt()
    overlap = Structure(Lattice.cubic(3.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.6]])
    generated = [a, a.copy(), b, None, "unparseable CIF: x", overlap]
    m = generation_metrics(generated, reference_train=[a], workers=1, progress=False)
    assert m["n_generated"] == 6 and m["n_valid"] == 3
    assert m["structural_validity"] == pytest.approx(3 / 6)
    assert m["compositional_validity"] == pytest.approx(3 / 6)  # NaCl2 fails SMACT, None/str have none
    assert m["uniqueness"] == pytest.approx(2 / 3)
    assert m["novelty"] == pytest.approx(1 / 3)
    assert m["unique_and_novel"] == pytest.approx(1 / 3)
    rows = m["per_sample"]
    assert (
        rows[1]["duplicate_of"] == 0 and rows[0]["training_match"] == 0 and rows[2]["training_match"] is None
    )
    assert rows[3]["reason"] == "no structure" and rows[4]["reason"] == "unparseable CIF: x"
    assert "0.300" in rows[5]["reason"]
    assert m["cov_recall"] is None  # no reference test set


def test_reference_fingerprints_are_cached(tmp_path):
    from hfmat.evaluation.fingerprints import cached_fingerprints

    refs = [perovskite(3.9), None]
    first = cached_fingerprints(refs, cache_dir=tmp_path, workers=1, progress=False)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = cached_fingerprints(refs, cache_dir=tmp_path, workers=1, progress=False)
    assert np.array_equal(first[0][0], again[0][0]) and np.array_equal(first[0][1], again[0][1])
    assert again[1] == (None, None, "no structure")


def test_training_keys_are_cached(tmp_path):
    from hfmat.evaluation.novelty import cached_bucket_keys

    train = [perovskite(3.9), rock_salt()]
    keys = cached_bucket_keys(train, cache_dir=tmp_path, workers=1, progress=False)
    assert keys == [("SrTiO3", 5), ("NaCl", 2)]  # rock salt's primitive cell has 2 sites
    (path,) = tmp_path.glob("*.keys.json")
    assert cached_bucket_keys(train, cache_dir=tmp_path, workers=1, progress=False) == keys


def test_cov_needs_thresholds_and_counts_all_samples(tmp_path):
    s = [perovskite(3.9)]
    m = generation_metrics(s + [None], reference_test=s, workers=1, progress=False)
    assert m["cov_recall"] is None and any("COV not computed" in i["issue"] for i in m["issues"])
    m = generation_metrics(
        s + [None], reference_test=s, cov_cutoffs={"struc": 0.2, "comp": 4.0}, workers=1, progress=False
    )
    assert m["cov_recall"] == 1.0 and m["cov_precision"] == 0.5  # CDVAE divides by all samples


def test_coverage_thresholds_are_respected():
    struct = np.zeros(61)
    comp = np.array(MAGPIE_MEANS)
    gen = [(struct + 0.3, comp, None)]  # same composition, structure fingerprint 0.3*sqrt(61) away
    ref = [(struct, comp, None)]
    assert coverage(gen, ref, 0.2, 4.0)["cov_recall"] == 0.0
    assert coverage(gen, ref, 3.0, 4.0)["cov_recall"] == 1.0
    gen = [(struct, comp + 1.0, None)]  # composition moved by one unit per feature: far once scaled
    assert coverage(gen, ref, 0.2, 4.0)["cov_precision"] == 0.0


def test_empty_generated_set():
    m = generation_metrics([], workers=1, progress=False)
    assert m["n_generated"] == 0 and m["validity"] is None
    assert any("empty" in i["issue"] for i in m["issues"])


@pytest.mark.parametrize(
    "name, key",
    [
        ("perov_5", "perov_5"),
        ("mp_20_subset", "mp_20"),
        ("../shared/data/perov_5/test.csv", "perov_5"),
        ("carbon-24", "carbon_24"),
        ("my_data", None),
    ],
)
def test_dataset_names(name, key):
    from hfmat.evaluation.reference import COV_CUTOFFS, canonical_dataset

    assert canonical_dataset(name) == key
    assert COV_CUTOFFS["mp_20"] == {"struc": 0.4, "comp": 10.0} and COV_CUTOFFS["perov_5"]["struc"] == 0.2

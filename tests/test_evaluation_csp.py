"""CSP metrics with known answers: identity, a fixed perturbation, an unrelated structure, validity,
k, bad input, the pair cache and the process pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from hfmat.evaluation import PairCache, csp_metrics


def perovskite(a: float = 3.9) -> Structure:
    return Structure(
        Lattice.cubic(a),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def rock_salt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def pentagon_perturbed(s: Structure, d: float) -> Structure:
    """Every site moved by exactly ``d`` A, the moves summing to zero (a regular pentagon in the xy
    plane), so the matcher's best translation is none and the RMS is d / (V/n)^(1/3) exactly."""
    assert len(s) == 5
    angles = 2 * np.pi * np.arange(5) / 5
    moves = d * np.stack([np.cos(angles), np.sin(angles), np.zeros(5)], axis=1)
    p = s.copy()
    for i, v in enumerate(moves):
        p.translate_sites([i], v, frac_coords=False, to_unit_cell=True)
    return p


def test_identical_sets_match_with_zero_rmse():
    refs = [perovskite(3.9), perovskite(4.1), rock_salt()]
    m = csp_metrics([[s.copy()] for s in refs], refs, k=1, workers=1, progress=False, cache=PairCache())
    assert m["match_rate"] == 1.0
    assert m["rmse"] == pytest.approx(0.0, abs=1e-8)
    assert m["n_matched"] == 3 and m["issues"] == []


def test_perturbation_gives_known_rms():
    s = perovskite()
    m = csp_metrics([[pentagon_perturbed(s, 0.05)]], [s], workers=1, progress=False, cache=PairCache())
    expected = 0.05 / (s.volume / len(s)) ** (1 / 3)
    assert m["match_rate"] == 1.0
    assert m["rmse"] == pytest.approx(expected, rel=1e-6)
    assert 0.02 < expected < 0.025


def test_unrelated_structure_never_matches():
    m = csp_metrics(
        [[rock_salt(), rock_salt()]], [perovskite()], k=2, workers=1, progress=False, cache=PairCache()
    )
    assert m["match_rate"] == 0.0
    assert m["rmse"] is None
    assert m["per_target"][0]["n_valid"] == 2


def test_invalid_prediction_never_counts():
    # Two atoms 0.3 A apart: the matcher would call the copy a perfect match, validity forbids it.
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.075, 0, 0]])
    m = csp_metrics([[bad.copy()]], [bad], workers=1, progress=False, cache=PairCache())
    assert m["match_rate"] == 0.0
    cand = m["per_target"][0]["candidates"][0]
    assert cand["valid"] is False and "0.300" in cand["reason"]


def test_best_of_k_and_k1_figures():
    s = perovskite()
    far, near = pentagon_perturbed(s, 0.2), pentagon_perturbed(s, 0.05)
    preds = [[rock_salt(), far, near]]
    m1 = csp_metrics(preds, [s], k=1, workers=1, progress=False, cache=PairCache())
    assert m1["match_rate"] == 0.0 and m1["match_rate_k1"] == 0.0
    m3 = csp_metrics(preds, [s], k=3, workers=1, progress=False, cache=PairCache())
    assert m3["match_rate"] == 1.0 and m3["match_rate_k1"] == 0.0
    assert m3["per_target"][0]["best_index"] == 2
    assert m3["rmse"] == pytest.approx(0.05 / (s.volume / 5) ** (1 / 3), rel=1e-6)
    short = csp_metrics(preds, [s], k=5, workers=1, progress=False, cache=PairCache())
    assert any("only 3 of k=5" in i["issue"] for i in short["issues"])


def test_bad_input_is_reported_per_item():
    s, t = perovskite(), rock_salt()
    preds = {"a": [None, "unparseable CIF: line 3"], "zzz": [s]}
    m = csp_metrics(preds, {"a": s, "b": t}, workers=1, progress=False, cache=PairCache())
    assert m["n_targets"] == 2 and m["match_rate"] == 0.0
    reasons = [c["reason"] for c in m["per_target"][0]["candidates"]]
    assert reasons == ["no structure", "unparseable CIF: line 3"]
    issues = {(i["material_id"], i["issue"]) for i in m["issues"]}
    assert ("b", "no prediction for this target") in issues
    assert any(mid == "zzz" and "not a target" in text for mid, text in issues)


def test_empty_prediction_set():
    m = csp_metrics({}, {"a": perovskite()}, workers=1, progress=False, cache=PairCache())
    assert m["match_rate"] == 0.0 and m["rmse"] is None
    assert any("empty" in i["issue"] for i in m["issues"])


def test_misaligned_lists_are_an_error():
    with pytest.raises(ValueError, match="2 prediction lists for 1 targets"):
        csp_metrics([[perovskite()], [perovskite()]], [perovskite()], progress=False)


def test_pairs_are_cached_and_never_repeated():
    s = perovskite()
    p = pentagon_perturbed(s, 0.05)
    cache = PairCache()
    m = csp_metrics([[p, p.copy(), p]], [s], workers=1, progress=False, cache=cache)
    assert cache.misses == 1 and len(cache) == 1 and cache.hits == 0
    again = csp_metrics([[p]], [s], workers=1, progress=False, cache=cache)
    assert cache.misses == 1 and cache.hits == 1
    assert again["rmse"] == m["rmse"]


def test_parallel_equals_serial():
    refs = [perovskite(3.8 + 0.05 * i) for i in range(5)] + [rock_salt()] * 3
    preds = [[pentagon_perturbed(r, 0.04)] if len(r) == 5 else [perovskite()] for r in refs]
    serial = csp_metrics(preds, refs, workers=1, progress=False, cache=PairCache())
    parallel = csp_metrics(preds, refs, workers=2, progress=False, cache=PairCache())
    assert serial["match_rate"] == parallel["match_rate"] == 5 / 8
    assert math.isclose(serial["rmse"], parallel["rmse"], rel_tol=1e-12)

"""benchmarks/bench_property_predictor.py: the two-part (zero / non-zero) gradient-boosted model."""

from __future__ import annotations

import numpy as np
import pytest
from scripts import load_script


def _data(n, rng):
    """Feature 0 decides zero or not; the non-zero value is 1 + 2 * feature 1; five noise features."""
    x = rng.normal(size=(n, 7))
    y = np.where(x[:, 0] > 1.0, 1.0 + 2.0 * np.abs(x[:, 1]), 0.0)
    return x, y


def test_zero_inflated_model_separates_and_sizes():
    bench = load_script("benchmarks/bench_property_predictor.py")
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = _data(2000, rng), _data(1000, rng)
    pred, fig = bench.zero_inflated_gbm(x, y, xt, yt, seed=0)
    assert pred.shape == yt.shape
    assert fig["test_nonzero"] == int((yt != 0).sum())
    assert fig["auc"] > 0.95 and fig["precision"] > 0.8 and fig["recall"] > 0.8
    assert fig["test_mae"] < 0.5 * fig["test_mae_of_zero"]
    assert fig["nonzero_regressor_mae"] < fig["nonzero_mae_of_median"]
    assert (pred[pred != 0] > 0).all()  # non-negative training values: never a negative prediction
    again, _ = bench.zero_inflated_gbm(x, y, xt, yt, seed=0)
    np.testing.assert_array_equal(pred, again)  # seeded


def test_zero_inflated_needs_both_kinds_of_rows():
    bench = load_script("benchmarks/bench_property_predictor.py")
    x = np.random.default_rng(1).normal(size=(100, 3))
    with pytest.raises(SystemExit, match="10 zero and 10 non-zero"):
        bench.zero_inflated_gbm(x, np.zeros(100), x, np.zeros(100))


def test_zero_inflated_property_must_be_listed():
    bench = load_script("benchmarks/bench_property_predictor.py")
    with pytest.raises(SystemExit, match="not among --properties"):
        bench.main(["--dataset", "perov_5", "--properties", "heat_ref", "--zero-inflated", "dir_gap"])
    with pytest.raises(SystemExit, match="drop --no-gbm"):
        bench.main(
            ["--dataset", "perov_5", "--properties", "dir_gap", "--zero-inflated", "dir_gap", "--no-gbm"]
        )

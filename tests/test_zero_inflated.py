"""The two-part (zero-inflated) gradient-boosted model of the property predictors: it predicts 0 where
its classifier says so and the regressor's size elsewhere, survives its skops round trip, refuses
files it should not load, joins an MLP predictor without touching the MLP properties, and the
training script's --two-part / --update write a predictor whose card says what each property is."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from scripts import load_script

pytest.importorskip("skops")
pytest.importorskip("matminer")

from hfmat.evaluation import crystal_features  # noqa: E402
from hfmat.evaluation.property_predictor import (  # noqa: E402
    PredictorError,
    PropertyPredictor,
    fit_property_predictor,
    merge_predictors,
)
from hfmat.evaluation.zero_inflated import ZeroInflatedError, ZeroInflatedRegressor  # noqa: E402


def _toy(n=400, seed=0):
    """y = 0 unless x0 > 0.7, then 2 + 3 * x1: a gap that the first feature decides."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4))
    y = np.where(x[:, 0] > 0.7, 2 + 3 * x[:, 1], 0.0)
    return x, y


@pytest.fixture(scope="module")
def toy_model():
    x, y = _toy()
    return ZeroInflatedRegressor.fit(x, y, seed=0, max_iter=50)


def test_zero_where_the_classifier_says_zero_and_the_size_elsewhere(toy_model):
    x, y = _toy(200, seed=1)
    pred = toy_model.predict(x)
    said = toy_model.probability(x) >= 0.5
    assert (pred[~said] == 0).all() and (pred[said] > 0).all()
    assert np.mean(said == (y != 0)) > 0.95
    assert np.abs(pred - y).mean() < 0.5 * np.abs(y).mean()  # far better than predicting 0
    assert toy_model.clip_min == 0.0  # every training value is >= 0


def test_skops_round_trip_gives_the_same_predictions(toy_model, tmp_path):
    path = toy_model.save(tmp_path / "gap.skops")
    assert zipfile.is_zipfile(path)
    back = ZeroInflatedRegressor.load(path, toy_model.threshold, toy_model.clip_min)
    x, _ = _toy(100, seed=2)
    np.testing.assert_array_equal(back.predict(x), toy_model.predict(x))


def test_unreadable_foreign_and_missing_files_are_refused(toy_model, tmp_path):
    import skops.io as sio

    with pytest.raises(ZeroInflatedError, match="no such file"):
        ZeroInflatedRegressor.load(tmp_path / "missing.skops")
    good = toy_model.save(tmp_path / "good.skops")
    cut = tmp_path / "cut.skops"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ZeroInflatedError, match="not a skops file"):
        ZeroInflatedRegressor.load(cut)
    import functools

    foreign = tmp_path / "foreign.skops"
    sio.dump({"classifier": functools.partial(max, 1), "regressor": toy_model.regressor}, foreign)
    with pytest.raises(ZeroInflatedError, match="types hfmat does not load: builtins.max, functools.partial"):
        ZeroInflatedRegressor.load(foreign)
    with pytest.raises(ZeroInflatedError, match="at least 10 zero and 10 non-zero"):
        ZeroInflatedRegressor.fit(np.ones((30, 2)), np.zeros(30))


@pytest.fixture(scope="module")
def perov_small(shared_data):
    import csv

    from pymatgen.core import Structure

    csv.field_size_limit(10**9)
    with open(shared_data / "perov_5" / "val.csv", newline="") as f:
        rows = [r for _, r in zip(range(600), csv.DictReader(f))]
    structures = [Structure.from_str(r["cif"], fmt="cif") for r in rows]
    table = crystal_features.element_table()
    x, _ = crystal_features.featurize(structures, table)
    return x, table, {p: np.array([float(r[p]) for r in rows]) for p in ("heat_ref", "dir_gap")}


def test_a_two_part_property_joins_an_mlp_predictor_and_round_trips(perov_small, tmp_path):
    x, table, y = perov_small
    mlp = fit_property_predictor(
        None, y, features=x, table=table, hidden=(16,), ensemble=1, max_epochs=5, info={"dataset": "perov_5"}
    )
    gap = fit_property_predictor(
        None, {"dir_gap": y["dir_gap"]}, features=x, table=table, two_part=["dir_gap"]
    )
    joined = merge_predictors(mlp, gap)
    assert (
        joined.properties == ["heat_ref", "dir_gap"] and joined.model_kind("dir_gap") == "zero_inflated_gbm"
    )
    np.testing.assert_array_equal(joined.predict_features(x, "heat_ref"), mlp.predict_features(x, "heat_ref"))
    folder = joined.save_pretrained(tmp_path / "joined")
    assert (folder / "dir_gap.skops").is_file()
    back = PropertyPredictor.from_pretrained(folder)
    for prop in ("heat_ref", "dir_gap"):
        np.testing.assert_allclose(
            back.predict_features(x, prop), joined.predict_features(x, prop), atol=1e-3
        )
    pred = back.predict_features(x, "dir_gap")
    assert (pred == 0).mean() > 0.5  # most perov-5 crystals have no direct gap, and it says so
    # the file named in the config is missing: said at load time
    (folder / "dir_gap.skops").unlink()
    with pytest.raises(PredictorError, match="two-part model, but its file .*dir_gap.skops is missing"):
        PropertyPredictor.from_pretrained(folder)
    with pytest.raises(PredictorError, match="not among the targets"):
        fit_property_predictor(
            None, {"heat_ref": y["heat_ref"]}, features=x, table=table, two_part=["dir_gap"]
        )


def test_mlps_normalised_differently_do_not_join(perov_small):
    x, table, y = perov_small
    a = fit_property_predictor(None, {"heat_ref": y["heat_ref"]}, features=x, table=table, hidden=(8,),
                               ensemble=1, max_epochs=2)  # fmt: skip
    b = fit_property_predictor(None, {"dir_gap": y["dir_gap"][:300]}, features=x[:300], table=table, hidden=(8,),
                               ensemble=1, max_epochs=2)  # fmt: skip
    with pytest.raises(PredictorError, match="normalised differently"):
        merge_predictors(a, b)


def test_training_script_two_part_update_and_card(shared_data, tmp_path):
    script = load_script("training/train_property_predictor.py")
    out = tmp_path / "pred"
    common = ["--dataset", "perov_5", "--data-dir", str(shared_data), "--limit-train", "400",
              "--limit-test", "60", "--threads", "1", "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit, match="--two-part dir_gap: not among --properties heat_ref"):
        script.main(common + ["--properties", "heat_ref", "--two-part", "dir_gap"])
    with pytest.raises(SystemExit, match="holds no predictor to update"):
        script.main(common + ["--properties", "dir_gap", "--two-part", "dir_gap", "--update"])
    script.main(
        common
        + ["--properties", "heat_ref", "dir_gap", "--ensemble", "1", "--hidden", "16", "--max-epochs", "5"]
    )
    before = PropertyPredictor.from_pretrained(out)
    heat_metrics = before.config["properties"]["heat_ref"]["metrics"]
    config = script.main(common + ["--properties", "dir_gap", "--two-part", "dir_gap", "--update"])
    assert config["properties"]["heat_ref"]["metrics"] == heat_metrics
    spec = config["properties"]["dir_gap"]
    assert spec["model"] == "zero_inflated_gbm" and "--update" in spec["command"]
    assert "--update" not in config["command"]  # the predictor's own command stays the first one
    assert json.loads((out / "config.json").read_text())["properties"]["dir_gap"]["file"] == "dir_gap.skops"
    card = (out / "README.md").read_text()
    assert "two-part gradient-boosted" in card and "in this order" in card and spec["command"] in card
    assert card.index(config["command"]) < card.index(spec["command"])

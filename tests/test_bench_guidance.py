"""benchmarks/bench_guidance.py end to end on a tiny conditioned pipeline trained here in seconds,
with a small predictor and a 40-crystal perov-5 "test split": it writes its table, JSON and PNG,
the targets are the split's percentiles, scale 0 is the unconditional samples, and it checks the
issue's targets."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("matminer")
pytestmark = pytest.mark.slow  # a training run, sampling, COV fingerprints: about 60 s on 2 busy cores


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(perov_val_csv, shared_data, tmp_path_factory):
    """(pipeline folder, predictor folder, data dir holding perov_5/test.csv of 40 test rows)."""
    from pymatgen.core import Structure

    from hfmat.evaluation.property_predictor import fit_property_predictor

    root = tmp_path_factory.mktemp("bench-guidance")
    train = _module("train_diffusion", REPO / "training" / "train_diffusion.py")
    train.main(
        [
            "--config", str(REPO / "training" / "configs" / "diffusion_tiny_conditioned.yaml"),
            "--output-dir", str(root / "run"), "--set", f"dataset={perov_val_csv}", "data_dir=null",
            "train_split=train", "eval_holdout=8", "max_train_samples=null", "max_steps=4",
            "per_device_batch_size=8", "save_every=100", "eval_every=100", "log_every=1",
            "hidden_dim=16", "num_layers=1", "num_frequencies=4", "time_embed_dim=8", "task=gen",
        ]
    )  # fmt: skip
    csv.field_size_limit(10**9)
    with open(perov_val_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    structures = [Structure.from_str(r["cif"], fmt="cif") for r in rows]
    targets = {p: [float(r[p]) for r in rows] for p in ("heat_ref", "dir_gap")}
    predictor = fit_property_predictor(structures, targets, hidden=(16,), ensemble=1, max_epochs=20)
    for p in predictor.properties:  # a stand-in for the test MAE the training script measures
        err = np.abs(predictor.predict(structures, p) - np.array(targets[p]))
        predictor.config["properties"][p]["metrics"]["test_mae"] = float(err.mean())
    predictor.save_pretrained(root / "predictor")

    with open(shared_data / "perov_5" / "test.csv", newline="") as f:
        reader = csv.DictReader(f)
        test_rows = [row for _, row in zip(range(40), reader)]
    (root / "data" / "perov_5").mkdir(parents=True)
    with open(root / "data" / "perov_5" / "test.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(test_rows[0]))
        writer.writeheader()
        writer.writerows(test_rows)
    return root / "run" / "final", root / "predictor", root / "data", test_rows


def _args(setup, out, *extra):
    pipeline, predictor, data, _ = setup
    return [
        "--pipeline", str(pipeline), "--predictor", str(predictor), "--dataset", "perov_5",
        "--data-dir", str(data), "--num-samples", "8", "--steps", "3", "--batch-size", "8",
        "--max-reference", "16", "--fingerprint-cache", str(out / "fp-cache"), "--no-progress",
        "--out", str(out), *extra,
    ]  # fmt: skip


def test_bench_guidance_end_to_end(setup, tmp_path):
    bench = _module("bench_guidance", REPO / "benchmarks" / "bench_guidance.py")
    out = tmp_path / "out"
    result = bench.main(_args(setup, out, "--properties", "heat_ref", "--scales", "0", "2"))

    assert (out / "guidance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "guidance.md").read_text()
    assert "| heat_ref |" in table and "unconditional" in table and "Issue 14 targets:" in table
    assert json.loads((out / "guidance.json").read_text())["command"] == result["command"]

    heat = np.array([float(r["heat_ref"]) for r in setup[3]])
    block = result["properties"]["heat_ref"]
    assert [t["target"] for t in block["targets"]] == pytest.approx(
        np.percentile(heat, [10, 50, 90]).tolist()
    )
    assert list(result["properties"]) == ["heat_ref"]
    for t in block["targets"]:
        assert [r["scale"] for r in t["rows"]] == [0.0, 2.0]
        zero, guided = t["rows"]
        # scale 0 is the unconditional sample set scored against this target
        assert {k: v for k, v in zero.items() if k != "scale"} == t["unconditional"]
        assert zero["pred_mean"] == result["unconditional"]["heat_ref"]["pred_mean"]
        for row in t["rows"]:
            assert row["n"] == 8 and 0 <= row["structural_validity"] <= 1
            assert row["cov_recall"] is not None and 0 <= row["on_target"] <= 1
        # "on target" counts structurally valid samples with a prediction, out of all samples
        assert guided["on_target"] <= guided["n_predicted"] / guided["n"]
        assert len(result["histograms"]["heat_ref"][f"{t['target']:.4g} @ 2"]) == 8
        assert t["test_split"]["n"] == 40
        at = t["at_target"]  # the ceiling: split crystals at the target, through the predictor
        assert at["window"] == pytest.approx(block["predictor_test_mae"] / 4)
        assert at["n"] == int((np.abs(heat - t["target"]) <= at["window"]).sum())
    assert "at the target:" in table
    kinds = [(c["percentile"], "fraction_moved" in c) for c in result["checks"]]
    assert kinds == [(10, False), (10, True), (50, False), (90, False), (90, True)]
    assert all(isinstance(c["met"], bool) for c in result["checks"])


def test_at_target_scores_the_split_crystals_at_the_target():
    bench = _module("bench_guidance", REPO / "benchmarks" / "bench_guidance.py")
    values = [1.0, 1.02, 1.2, 0.99, float("nan")]
    predictions = [1.05, 1.3, 1.0, 0.9, 1.0]  # within 0.1 of 1.0: the first and the fourth
    got = bench.at_target(values, predictions, 1.0, 0.12)
    assert got == {"window": pytest.approx(0.03), "n": 3, "on_target": pytest.approx(2 / 3)}
    assert bench.at_target(values, predictions, 5.0, 0.12)["on_target"] is None


def test_bench_guidance_refuses_a_property_the_pipeline_is_not_conditioned_on(setup, tmp_path):
    bench = _module("bench_guidance", REPO / "benchmarks" / "bench_guidance.py")
    with pytest.raises(SystemExit, match="scalar conditions are \\['heat_ref', 'dir_gap'\\]"):
        bench.main(_args(setup, tmp_path, "--properties", "band_gap"))


@pytest.mark.skipif(importlib.util.find_spec("chgnet") is None, reason="needs the physics extra (chgnet)")
def test_bench_guidance_predicts_after_relaxing_when_asked(setup, tmp_path):
    bench = _module("bench_guidance", REPO / "benchmarks" / "bench_guidance.py")
    out = tmp_path / "out"
    extra = ["--properties", "heat_ref", "--percentiles", "50", "--scales", "0", "2"]
    plain = bench.main(_args(setup, tmp_path / "plain", *extra))
    result = bench.main(_args(setup, out, *extra, "--relax", "chgnet", "--relax-steps", "3"))

    assert plain["relax"] is None and plain["relax_runs"] == []
    assert result["relax"] == {"potential": "chgnet", "steps": 3, "fmax": 0.1, "relax_cell": False}
    assert len(result["relax_runs"]) == 2  # the unconditional set and the one guided set
    unguided = result["unconditional"]["heat_ref"]
    first = result["relax_runs"][0]
    # every structurally valid sample went to the potential, and each relaxed one got a prediction
    assert first["n"] == round(unguided["structural_validity"] * unguided["n"])
    assert unguided["n_predicted"] == first["relaxed"] <= first["n"]
    assert all(r["mean_steps"] is None or r["mean_steps"] <= 4 for r in result["relax_runs"])
    # the raw samples' validity and coverage are unchanged; the predictions are not the raw ones
    assert unguided["structural_validity"] == plain["unconditional"]["heat_ref"]["structural_validity"]
    assert unguided["cov_recall"] == plain["unconditional"]["heat_ref"]["cov_recall"]
    if first["relaxed"]:
        assert unguided["pred_mean"] != plain["unconditional"]["heat_ref"]["pred_mean"]
    assert "after relaxing each structurally valid one with chgnet" in (out / "guidance.md").read_text()

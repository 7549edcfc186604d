"""benchmarks/condition_information.py: the denoising loss with the condition true, absent and
shuffled shares its noise draws, so a denoiser that ignores its condition (the zero-initialised
adapter) shows no difference at all, and one that uses it does."""

from __future__ import annotations

import pytest
import torch
from csv_head import head_csv
from scripts import load_script

from hfmat.diffusion import CrystalDenoiser

CONDITION = [{"name": "heat_ref", "kind": "scalar", "mean": 1.0, "std": 0.7}]


@pytest.fixture(scope="module")
def data_dir(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("condinfo-data")
    (root / "perov_5").mkdir()
    head_csv(shared_data / "perov_5" / "test.csv", 12, root / "perov_5" / "test.csv")
    return root


def _run(pipe, tmp_path, data_dir, name):
    folder = tmp_path / name
    pipe.save_pretrained(folder)
    bench = load_script("benchmarks/condition_information.py")
    argv = ["--pipeline", str(folder), "--data-dir", str(data_dir), "--batch-size", "5", "--repeats", "2"]
    return bench.main(argv)


def test_a_denoiser_that_ignores_its_condition_shows_no_difference(
    tiny_diffusion_pipeline, data_dir, tmp_path
):
    pipe = tiny_diffusion_pipeline(True, num_atoms=5)
    pipe.register_modules(denoiser=CrystalDenoiser.with_conditions(pipe.denoiser, CONDITION).eval())
    out = _run(pipe, tmp_path, data_dir, "adapter")
    assert out["crystals"] == 12 and out["conditions"] == ["heat_ref"]
    for mode in ("absent", "shuffled"):
        for part, d in out[f"{mode}_minus_true"].items():
            assert d["mean"] == pytest.approx(0.0, abs=1e-6), (mode, part)
    assert out["true"]["loss"] > 0 and out["true"]["type"] > 0


def test_a_denoiser_that_uses_its_condition_shows_it(tiny_diffusion_pipeline, data_dir, tmp_path):
    pipe = tiny_diffusion_pipeline(True, num_atoms=5, conditions=CONDITION)
    with torch.no_grad():  # condition embeddings far from zero: the outputs depend on the value
        for name, p in pipe.denoiser.named_parameters():
            if name.startswith("condition_"):
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) * 2)
    out = _run(pipe, tmp_path, data_dir, "used")
    assert abs(out["absent_minus_true"]["loss"]["mean"]) > 1e-3
    assert abs(out["shuffled_minus_true"]["loss"]["mean"]) > 1e-5  # other values, other outputs


def test_a_denoiser_without_conditions_is_refused(tiny_diffusion_pipeline, data_dir, tmp_path):
    with pytest.raises(SystemExit, match="no conditions"):
        _run(tiny_diffusion_pipeline(True, num_atoms=5), tmp_path, data_dir, "plain")

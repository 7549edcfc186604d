"""condition_every_layer: the condition embedding added before every message-passing layer too.
Off by default (every shipped denoiser is unchanged, tests/test_guidance.py), zero at the start,
so an upgraded trained model samples as before until it is fine-tuned; it survives save/load and
train_diffusion.py --init-from adds it."""

from __future__ import annotations

import pytest
import torch
from scripts import load_script
from test_guidance import CONDITIONS, TINY_CONDITIONED, _inputs, _train_args

from hfmat.diffusion import CrystalDenoiser

CONDS = {"heat_ref": torch.tensor([-1.0, 2.0]), "crystal_system": torch.tensor([1, 5])}


def _outputs(model, **extra):
    with torch.no_grad():
        out = model(**_inputs(), conditions=CONDS, **extra)
    return out.lattice_noise, out.coord_score, out.type_logits


@pytest.fixture(scope="module")
def base(tiny_diffusion_pipeline):
    return tiny_diffusion_pipeline(True, conditions=CONDITIONS).denoiser.eval()


def test_the_upgrade_starts_from_the_base_model_exactly_and_learns(base):
    model = CrystalDenoiser.with_layer_conditions(base).eval()
    assert model.config.condition_every_layer and not base.config.condition_every_layer
    assert len(model.layer_conditions) == base.config.num_layers
    for a, b in zip(_outputs(model), _outputs(base)):
        assert torch.equal(a, b)
    out = model.train()(**_inputs(), conditions=CONDS)
    out.type_logits.logsumexp(-1).sum().backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in model.layer_conditions), "every map is used"
    with pytest.raises(ValueError, match="already adds its conditions to every layer"):
        CrystalDenoiser.with_layer_conditions(model)


def test_the_maps_change_the_outputs_once_trained_and_survive_save_and_load(base, tmp_path):
    model = CrystalDenoiser.with_layer_conditions(base).eval()
    with torch.no_grad():
        for m in model.layer_conditions:
            m.weight.normal_(0, 0.1)
    assert not torch.equal(_outputs(model)[1], _outputs(base)[1])
    model.save_pretrained(tmp_path)
    loaded = CrystalDenoiser.from_pretrained(tmp_path).eval()
    assert loaded.config.condition_every_layer
    for a, b in zip(_outputs(loaded), _outputs(model)):
        assert torch.equal(a, b)


def test_an_unconditional_model_cannot_take_it(tiny_diffusion_pipeline):
    plain = tiny_diffusion_pipeline(True).denoiser
    with pytest.raises(ValueError, match="has no conditions"):
        CrystalDenoiser.with_layer_conditions(plain)
    config = {k: v for k, v in plain.config.items() if not k.startswith("_")}
    with pytest.raises(ValueError, match="condition_every_layer needs conditions"):
        CrystalDenoiser(**{**config, "condition_every_layer": True})


def test_init_from_a_conditioned_pipeline_adds_the_maps(perov_val_csv, tmp_path):
    script = load_script("training/train_diffusion.py")
    script.main(_train_args(TINY_CONDITIONED, perov_val_csv, tmp_path / "base", steps=2))
    base = CrystalDenoiser.from_pretrained(tmp_path / "base" / "final" / "denoiser").eval()
    argv = [
        *_train_args(TINY_CONDITIONED, perov_val_csv, tmp_path / "ft", "condition_every_layer=true", steps=2),
        "--init-from",
        str(tmp_path / "base" / "final"),
    ]
    cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
    train, _, _ = script.build_datasets(cfg)
    model = script.build_components(cfg, train)["denoiser"].eval()
    conditions = {"heat_ref": torch.tensor([0.5, 3.0]), "dir_gap": torch.tensor([0.0, 1.0])}
    with torch.no_grad():
        a, b = model(**_inputs(), conditions=conditions), base(**_inputs(), conditions=conditions)
    assert torch.equal(a.type_logits, b.type_logits) and torch.equal(a.coord_score, b.coord_score)
    assert script.main(argv)["stop_reason"] == "done"
    tuned = CrystalDenoiser.from_pretrained(tmp_path / "ft" / "final" / "denoiser")
    assert tuned.config.condition_every_layer

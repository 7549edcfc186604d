"""De novo atom types limited to the training data's elements (the denoiser's ``elements`` config),
and a de novo model started from a structure-prediction checkpoint (``CrystalDenoiser.for_generation``,
``train_diffusion.py --init-from`` a CSP pipeline with ``task: gen``)."""

from __future__ import annotations

import json

import pytest
import torch
from scripts import load_script
from tiny import tiny_denoiser

from hfmat.diffusion import (
    CrystalDenoiser,
    CrystalDiffusionPipeline,
    D3PMScheduler,
    WrappedNormalScheduler,
    lattice_scheduler,
)
from hfmat.diffusion.denoiser import MASK_TYPE

CONDITIONS = [{"name": "energy_per_atom", "kind": "scalar", "mean": -154.0, "std": 0.1}]


def _denoiser(predict_atom_types=True, **kwargs) -> CrystalDenoiser:
    return tiny_denoiser(predict_atom_types, num_atoms=6, **kwargs)


def _pipe(denoiser) -> CrystalDiffusionPipeline:
    pipe = CrystalDiffusionPipeline(
        denoiser=denoiser,
        lattice_scheduler=lattice_scheduler(),
        coord_scheduler=WrappedNormalScheduler(corrector_steps=0),
        type_scheduler=D3PMScheduler() if denoiser.config.predict_atom_types else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _elements(structures) -> set[str]:
    return {site.specie.symbol for s in structures for site in s}


def _sample(pipe, **kwargs):
    return pipe(num_samples=6, num_inference_steps=4, generator=torch.Generator().manual_seed(0), **kwargs)


def test_a_model_with_elements_samples_only_those_elements():
    free = _sample(_pipe(_denoiser())).structures
    assert len(_elements(free)) > 2  # a random type head spreads over the periodic table
    carbon = _sample(_pipe(_denoiser(elements=["C"]))).structures
    assert _elements(carbon) == {"C"} and len(carbon) == 6
    two = _sample(_pipe(_denoiser(elements=["Sr", "O"]))).structures
    assert _elements(two) <= {"Sr", "O"}


def test_elements_hold_under_guidance():
    pipe = _pipe(_denoiser(elements=["C"], conditions=CONDITIONS))
    with torch.no_grad():  # a visible condition effect, so the two guided halves differ
        pipe.denoiser.condition_null["energy_per_atom"].normal_()
    for scale in (1.0, 3.0):
        out = _sample(pipe, conditions={"energy_per_atom": -154.2}, guidance_scale=scale)
        assert _elements(out.structures) == {"C"}


def test_elements_survive_save_and_load_and_a_config_without_them_samples_as_before(tmp_path):
    masked = _pipe(_denoiser(elements=["C"]))
    masked.save_pretrained(tmp_path / "masked")
    config = json.loads((tmp_path / "masked" / "denoiser" / "config.json").read_text())
    assert config["elements"] == ["C"]
    loaded = CrystalDiffusionPipeline.from_pretrained(tmp_path / "masked")
    assert loaded.denoiser.config.elements == ["C"]
    assert loaded.denoiser.allowed_atom_types().nonzero().flatten().tolist() == [6]

    # a folder saved before the field existed: no "elements" key at all
    plain = _pipe(_denoiser())
    plain.save_pretrained(tmp_path / "plain")
    path = tmp_path / "plain" / "denoiser" / "config.json"
    config = json.loads(path.read_text())
    config.pop("elements")
    path.write_text(json.dumps(config))
    old = CrystalDiffusionPipeline.from_pretrained(tmp_path / "plain")
    old.set_progress_bar_config(disable=True)
    assert old.denoiser.config.elements is None and old.denoiser.allowed_atom_types() is None
    a, b = _sample(plain).structures, _sample(old).structures
    assert [s.composition for s in a] == [s.composition for s in b]
    assert all((x.frac_coords == y.frac_coords).all() for x, y in zip(a, b))


@pytest.mark.parametrize(
    "elements, message",
    [
        (["C", "Xx"], r"elements\[1\]: 'Xx' is not an element symbol"),
        ([], "empty list"),
        (["C", "C"], "lists an element twice"),
        ("C", "must be a list of element symbols"),
    ],
)
def test_bad_elements_are_refused(elements, message):
    with pytest.raises(ValueError, match=message):
        _denoiser(elements=elements)


def _inputs(types):
    g = torch.Generator().manual_seed(1)
    n = len(types)
    return {
        "atom_types": torch.tensor(types),
        "frac_coords": torch.rand(n, 3, generator=g),
        "lattices": torch.eye(3).expand(2, 3, 3) + 0.1 * torch.randn(2, 3, 3, generator=g),
        "timesteps": torch.tensor([100, 800]),
        "num_atoms": torch.tensor([n // 2, n - n // 2]),
    }


def test_for_generation_starts_from_the_structure_prediction_model():
    base = _denoiser(predict_atom_types=False)
    model, new = CrystalDenoiser.for_generation(base, ["C"], CONDITIONS)
    model.eval()
    assert model.config.predict_atom_types and model.config.elements == ["C"]
    assert model.config.conditions[0]["name"] == "energy_per_atom"
    assert {"type_head.weight", "type_head.bias"} <= set(new)
    assert any(k.startswith("condition_") for k in new)
    with torch.no_grad():
        ref = base(**_inputs([6] * 8))
        # a fully masked carbon crystal, a condition given or not: the base model on carbon
        for kwargs in ({}, {"conditions": {"energy_per_atom": torch.tensor([-154.3, -153.9])}}):
            out = model(**_inputs([MASK_TYPE] * 8), **kwargs)
            assert torch.equal(out.coord_score, ref.coord_score)
            assert torch.equal(out.lattice_noise, ref.lattice_noise)
            assert torch.equal(out.type_logits, torch.zeros_like(out.type_logits))
    with pytest.raises(ValueError, match="structure-prediction"):
        CrystalDenoiser.for_generation(_denoiser(), ["C"])


TINY = "training/configs/diffusion_tiny.yaml"


def _train_args(csv, out, *sets):
    return [
        "--config", TINY, "--output-dir", str(out),
        "--set", f"dataset={csv}", "data_dir=null", "train_split=train", "eval_holdout=8",
        "max_train_samples=null", "max_steps=2", "per_device_batch_size=8", "save_every=100",
        "eval_every=100", "log_every=1", "hidden_dim=16", "num_layers=1", "num_frequencies=4",
        "time_embed_dim=8", *sets,
    ]  # fmt: skip


def test_training_records_elements_and_starts_de_novo_from_a_csp_pipeline(perov_val_csv, tmp_path, capsys):
    from pymatgen.core.periodic_table import Element

    script = load_script("training/train_diffusion.py")
    script.main(_train_args(perov_val_csv, tmp_path / "csp", "task=csp"))
    assert CrystalDenoiser.from_pretrained(tmp_path / "csp" / "final" / "denoiser").config.elements is None
    capsys.readouterr()
    argv = _train_args(perov_val_csv, tmp_path / "gen", "task=gen", f"init_from={tmp_path / 'csp' / 'final'}")
    assert script.main(argv)["stop_reason"] == "done"
    printed = capsys.readouterr().out
    assert "(structure prediction) for task gen: copied" in printed
    assert "new: type_head.weight, type_head.bias" in printed
    pipe = CrystalDiffusionPipeline.from_pretrained(tmp_path / "gen" / "final")
    pipe.set_progress_bar_config(disable=True)
    train = json.loads((tmp_path / "gen" / "final" / "training_summary.json").read_text())["data"]
    elements = pipe.denoiser.config.elements
    assert set(elements) == set(train["elements"]) and len(elements) > 3
    assert [Element(e).Z for e in elements] == sorted(Element(e).Z for e in elements)
    assert _elements(_sample(pipe).structures) <= set(elements)

    # continuing a de novo pipeline: its elements and the data's, by atomic number
    path = tmp_path / "gen" / "final" / "denoiser" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "elements": ["U"]}))
    argv = _train_args(
        perov_val_csv, tmp_path / "more", "task=gen", f"init_from={tmp_path / 'gen' / 'final'}"
    )
    cfg = script.common.config_from_args(script.parse_args(argv), script.DEFAULTS)
    train, _, _ = script.build_datasets(cfg)
    model = script.build_components(cfg, train)["denoiser"]
    assert model.config.elements == [*elements, "U"]  # none of Perov-5's elements is heavier than U
    assert model.allowed_atom_types().nonzero().flatten().tolist() == [Element(e).Z for e in [*elements, "U"]]

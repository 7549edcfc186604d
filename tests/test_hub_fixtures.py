"""Compatibility guard: folders saved by an earlier hfmat (tests/fixtures/, made by
tests/fixtures/make_fixtures.py with the tiny training configs) must keep loading, by path and by
repo id, with every weight taken from the file. A refactor that moves a class named in a saved
config, renames a weight or changes a saved config's meaning fails here: fix the code (or write a
migration), do not regenerate the fixtures to make this pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfmat.hub import check_folder

FIXTURES = Path(__file__).parent / "fixtures"
LM = FIXTURES / "lm-tiny"
PIPELINE = FIXTURES / "pipeline-tiny"
TEXT = "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n"


def _assert_weights_from_file(module: torch.nn.Module, weights: Path) -> None:
    """Every tensor in the file is loaded into ``module`` unchanged, and every parameter of the
    module comes from the file (nothing left randomly initialised)."""
    saved = load_file(str(weights))
    state = module.state_dict()
    assert set(saved) <= set(state), f"keys the model no longer has: {sorted(set(saved) - set(state))}"
    for key, tensor in saved.items():
        assert torch.equal(state[key], tensor), key
    from_file = {state[k].data_ptr() for k in saved}
    for name, param in module.named_parameters():
        assert param.data_ptr() in from_file, f"parameter {name} was not in {weights.name}"


def test_fixtures_are_small_complete_repositories():
    for folder, kind in ((LM, "language-model"), (PIPELINE, "pipeline")):
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert size < 1_000_000, f"{folder} is {size} bytes"
        assert check_folder(folder).kind == kind


def test_language_model_fixture_loads_by_repo_id(hf_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    from hfmat.lm import generate_cifs

    hf_cache("hfmat-fixtures/lm-tiny", LM)
    tok = AutoTokenizer.from_pretrained("hfmat-fixtures/lm-tiny")
    model = AutoModelForCausalLM.from_pretrained("hfmat-fixtures/lm-tiny")
    assert isinstance(model, GPT2LMHeadModel)
    _assert_weights_from_file(model, LM / "model.safetensors")
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == TEXT and tok.unk_token_id not in ids
    samples = generate_cifs(model, tok, compositions=["SrTiO3"], num_samples=1, max_new_tokens=24, seed=0)
    assert len(samples) == 1 and samples[0].text.startswith("data_Sr1Ti1O3\n")


@pytest.fixture(scope="module")
def pipeline():
    from hfmat.diffusion import CrystalDiffusionPipeline

    return CrystalDiffusionPipeline.from_pretrained(PIPELINE)


def test_pipeline_fixture_loads_every_component(pipeline):
    from diffusers import DDPMScheduler

    from hfmat.diffusion import CrystalDenoiser, D3PMScheduler, WrappedNormalScheduler

    assert isinstance(pipeline.denoiser, CrystalDenoiser)
    assert isinstance(pipeline.coord_scheduler, WrappedNormalScheduler)
    assert isinstance(pipeline.type_scheduler, D3PMScheduler)
    assert isinstance(pipeline.lattice_scheduler, DDPMScheduler)
    assert pipeline.lattice_scheduler.config.clip_sample is False
    _assert_weights_from_file(
        pipeline.denoiser, PIPELINE / "denoiser" / "diffusion_pytorch_model.safetensors"
    )


def test_pipeline_fixture_samples(pipeline):
    generator = torch.Generator().manual_seed(0)
    out = pipeline(compositions=["SrTiO3"], num_samples=1, num_inference_steps=2, generator=generator)
    assert [s.composition.reduced_formula for s in out.structures] == ["SrTiO3"]
    out = pipeline(num_samples=1, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert len(out.structures) == 1


def test_pipeline_fixture_loads_by_repo_id(hf_cache):
    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.hub import load

    hf_cache("hfmat-fixtures/pipeline-tiny", PIPELINE)
    pipe = CrystalDiffusionPipeline.from_pretrained("hfmat-fixtures/pipeline-tiny")
    _assert_weights_from_file(pipe.denoiser, PIPELINE / "denoiser" / "diffusion_pytorch_model.safetensors")
    assert load(CrystalDiffusionPipeline, "hfmat-fixtures/pipeline-tiny").type_scheduler is not None

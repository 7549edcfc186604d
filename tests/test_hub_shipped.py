"""Every shipped checkpoint under checkpoints/ is a complete Hub repository that `hfmat push` accepts
(files, safetensors headers, card with metadata and a model-index where it reports results). The text
models (Crystal CLIP, its text encoder and prose tokenizer) have their own tests in
tests/test_text_shipped.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfmat.hub import check_folder

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (REPO / "checkpoints").glob("*") if p.is_dir())


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_is_a_complete_hub_repo(folder):
    from huggingface_hub import ModelCard

    artifact = check_folder(folder)
    assert artifact.kind in ("language-model", "pipeline", "crystal-clip", "text-encoder", "tokenizer")
    card = ModelCard.load(folder / "README.md")
    assert card.data.to_dict()["hfmat"]["repo_id"] == f"hfmat/{folder.name}"
    assert f'from_pretrained("hfmat/{folder.name}")' in card.text
    cited = {
        "language-model": ["Antunes"],
        "pipeline": ["Jiao, Rui", "Park, Hyunsoo"],
        "crystal-clip": ["Park, Hyunsoo"],
        "text-encoder": ["Park, Hyunsoo"],
        "tokenizer": ["Antunes", "Park, Hyunsoo"],
    }[artifact.kind]
    assert all(author in card.text for author in cited), f"{folder.name}'s card must cite {cited}"
    assert "github.com/hfmat" not in card.text  # no made-up links


def test_shipped_language_model_pins_its_tokenizer_class():
    """transformers 5 saves a loaded tokenizer as TokenizersBackend, with load-time keys: the shipped
    folder names the stable public class, so it loads next to its GPT-2 config.json anywhere."""
    import json

    config = json.loads((REPO / "checkpoints" / "cif-gpt2-perov5" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "is_local" not in config and "local_files_only" not in config
    assert (REPO / "checkpoints" / "cif-gpt2-perov5" / "tokenizer.json").read_bytes() == (
        REPO / "tokenizer" / "tokenizer.json"
    ).read_bytes()


CIF_PREFIX = "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n_cell_length_a "


def test_shipped_language_model_loads_by_repo_id(hf_cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = REPO / "checkpoints" / "cif-gpt2-perov5"
    assert folder.is_dir(), "checkpoints/cif-gpt2-perov5 is not shipped"
    hf_cache("hfmat/cif-gpt2-perov5", folder)
    tok = AutoTokenizer.from_pretrained("hfmat/cif-gpt2-perov5")
    model = AutoModelForCausalLM.from_pretrained("hfmat/cif-gpt2-perov5")
    ids = tok(CIF_PREFIX, return_tensors="pt")["input_ids"]
    assert tok.decode(ids[0], skip_special_tokens=True) == CIF_PREFIX
    with torch.no_grad():
        nxt = tok.decode(model(ids).logits[0, -1].argmax())
    assert nxt.isdigit(), f"a trained model continues a cell length with a digit, got {nxt!r}"


def test_shipped_pipeline_loads_by_repo_id(hf_cache):
    import torch

    from hfmat.diffusion import CrystalDiffusionPipeline

    folder = REPO / "checkpoints" / "crystal-diffusion-perov5"
    assert folder.is_dir(), "checkpoints/crystal-diffusion-perov5 is not shipped"
    hf_cache("hfmat/crystal-diffusion-perov5", folder)
    pipe = CrystalDiffusionPipeline.from_pretrained("hfmat/crystal-diffusion-perov5")
    out = pipe(
        compositions=["SrTiO3"],
        num_samples=1,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert [s.composition.reduced_formula for s in out.structures] == ["SrTiO3"]

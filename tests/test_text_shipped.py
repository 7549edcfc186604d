"""The shipped text models: Crystal CLIP, its text encoder and its prose tokenizer, each a complete Hub
repository that loads by path and by repo id from the offline cache, the text side with plain
transformers alone; `hfmat push`'s folder check knows the CLIP and text-encoder kinds and names what a
broken folder lacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hfmat import shipped
from hfmat.hub import IncompleteArtifactError, check_folder, detect_kind

CLIP = shipped.shipped_model(shipped.CLIP)
TEXT_ENCODER = shipped.shipped_model(shipped.TEXT_ENCODER)
TOKENIZER = shipped.shipped_model(shipped.PROSE_TOKENIZER)
SEED = "ZnO is a wide bandgap semiconductor"


def test_each_text_model_is_a_complete_hub_repo_of_its_kind():
    assert [detect_kind(f) for f in (CLIP, TEXT_ENCODER, TOKENIZER)] == [
        "crystal-clip",
        "text-encoder",
        "tokenizer",
    ]
    files = check_folder(CLIP).files
    assert {"clip_config.json", "retrieval.json", "text_encoder/model.safetensors"} <= set(files)
    assert "crystal_encoder/diffusion_pytorch_model.safetensors" in files
    assert check_folder(TEXT_ENCODER).files == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert check_folder(TOKENIZER).files == ["README.md", "tokenizer.json", "tokenizer_config.json"]


def test_the_text_side_repos_hold_the_clip_folders_files_byte_for_byte():
    for name in ("config.json", "model.safetensors"):
        assert (TEXT_ENCODER / name).read_bytes() == (CLIP / "text_encoder" / name).read_bytes()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        source = (CLIP / "tokenizer" / name).read_bytes()
        assert (TEXT_ENCODER / name).read_bytes() == source == (TOKENIZER / name).read_bytes()


def test_the_cards_are_what_the_export_writes(tmp_path):
    """Re-exporting the committed CLIP folder gives the committed cards (the figures in them come from
    its training_summary.json and retrieval.json; only the recorded library versions may differ)."""
    from huggingface_hub import ModelCard

    from hfmat.text.export import export_text_repos

    clip = Path(shutil.copytree(CLIP, tmp_path / CLIP.name))
    out = export_text_repos(clip, tmp_path / TEXT_ENCODER.name, tmp_path / TOKENIZER.name)
    for key, committed in (("clip", CLIP), ("text_encoder", TEXT_ENCODER), ("tokenizer", TOKENIZER)):
        assert ModelCard.load(out[key] / "README.md").text == ModelCard.load(committed / "README.md").text, (
            f"{committed.name}/README.md is stale: run `python -m hfmat.text.export {CLIP.as_posix()}`"
        )


PLAIN = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer

def embed(tok, bert):
    enc = tok([{seed!r}], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        return torch.nn.functional.normalize(bert(**enc).pooler_output, dim=-1)[0].tolist()

out = {{}}
for name in {text_encoders!r}:
    out[name] = embed(AutoTokenizer.from_pretrained(name), AutoModel.from_pretrained(name))
for name in {clips!r}:
    out[name] = embed(AutoTokenizer.from_pretrained(name, subfolder="tokenizer"),
                      AutoModel.from_pretrained(name, subfolder="text_encoder"))
tokens = {{name: AutoTokenizer.from_pretrained(name).tokenize({seed!r}) for name in {tokenizers!r}}}
print(json.dumps({{"embeddings": out, "tokens": tokens,
                  "hfmat": sorted(k for k in sys.modules if k.startswith("hfmat"))}}))
"""


def test_text_side_loads_with_plain_transformers_by_path_and_by_repo_id(hf_cache, tmp_path):
    """In a process that never imports hfmat, with HF_HUB_OFFLINE=1: the text encoder and the prose
    tokenizer by path and by repo id, and the CLIP repo's text tower with subfolder=; every route gives
    the same embedding of the seed text, and CrystalCLIP's own text tower agrees."""
    import torch

    from hfmat.text import CrystalCLIP

    for folder in (TEXT_ENCODER, TOKENIZER):
        hf_cache(f"hfmat/{folder.name}", folder)
    # AutoTokenizer probes config.json before tokenizer_config.json; offline it needs the record of its
    # absence that an online load leaves (conftest lays it out at the root, here for tokenizer/ too)
    snapshot = hf_cache(f"hfmat/{CLIP.name}", CLIP)
    absent = snapshot.parents[1] / ".no_exist" / snapshot.name / "tokenizer"
    absent.mkdir(parents=True, exist_ok=True)
    (absent / "config.json").touch()
    code = PLAIN.format(
        seed=SEED,
        text_encoders=[str(TEXT_ENCODER), f"hfmat/{TEXT_ENCODER.name}"],
        clips=[str(CLIP), f"hfmat/{CLIP.name}"],
        tokenizers=[str(TOKENIZER), f"hfmat/{TOKENIZER.name}", f"hfmat/{TEXT_ENCODER.name}"],
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["hfmat"] == []
    assert all(tokens[:2] == ["Zn", "O"] for tokens in result["tokens"].values()), result["tokens"]
    assert len({tuple(t) for t in result["tokens"].values()}) == 1
    ours = CrystalCLIP.from_pretrained(CLIP).embed_texts([SEED])[0]
    for name, embedding in result["embeddings"].items():
        assert torch.allclose(torch.tensor(embedding), ours, atol=1e-5), name


def test_crystal_clip_loads_by_repo_id_and_by_shipped_name(hf_cache):
    from hfmat.text import CrystalCLIP

    snapshot = hf_cache(f"hfmat/{CLIP.name}", CLIP)
    by_id = CrystalCLIP.from_pretrained(f"hfmat/{CLIP.name}")
    by_name = CrystalCLIP.from_pretrained(shipped.CLIP)
    assert by_id.config == by_name.config and by_id.config["format"] == "hfmat-crystal-clip"
    assert (snapshot / "clip_config.json").is_file()
    a, b = (m.embed_texts(["SrTiO3, a cubic crystal"]) for m in (by_id, by_name))
    assert a.equal(b)


def _broken(tmp_path, source: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / source.name))


def test_check_folder_names_what_a_broken_clip_folder_lacks(tmp_path):
    folder = _broken(tmp_path, CLIP)
    (folder / "crystal_encoder" / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(IncompleteArtifactError, match="not a complete crystal-clip repository") as err:
        check_folder(folder)
    assert err.value.missing == [
        "tokenizer/tokenizer.json",
        "crystal_encoder/diffusion_pytorch_model.safetensors",
    ]


def test_check_folder_refuses_a_clip_config_of_another_format_and_a_tokenizer_without_class(tmp_path):
    folder = _broken(tmp_path, CLIP)
    config = json.loads((folder / "clip_config.json").read_text())
    (folder / "clip_config.json").write_text(json.dumps({**config, "format": "something-else"}))
    tok_config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
    del tok_config["tokenizer_class"]
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(tok_config))
    with pytest.raises(IncompleteArtifactError) as err:
        check_folder(folder)
    message = str(err.value)
    assert "clip_config.json has format 'something-else', expected 'hfmat-crystal-clip'" in message
    assert "tokenizer/tokenizer_config.json has no tokenizer_class" in message


def test_check_folder_names_what_a_broken_text_encoder_lacks(tmp_path):
    folder = _broken(tmp_path, TEXT_ENCODER)
    (folder / "model.safetensors").unlink()
    (folder / "tokenizer.json").unlink()
    assert detect_kind(folder) == "text-encoder"  # told apart from a causal LM by its architecture
    with pytest.raises(IncompleteArtifactError, match="not a complete text-encoder repository") as err:
        check_folder(folder)
    assert sorted(err.value.missing) == ["model.safetensors", "tokenizer.json"]


def test_the_text_models_resolve_by_name_but_are_not_offered_as_generators():
    from hfmat.hub import resolve

    for name in shipped.TEXT_NAMES:
        assert resolve(name) == shipped.shipped_model(name)
        assert name not in shipped.NAMES  # the app and demo offer NAMES as generators

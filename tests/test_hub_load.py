"""Loading by repo id from an offline Hugging Face cache, and the errors when that cannot work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import snapshot_download
from scripts import load_script
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Tokenizer, PreTrainedTokenizerFast

from hfmat.hub import (
    CorruptWeightsError,
    IncompatibleArtifactError,
    NotCachedError,
    check_safetensors,
    load,
    resolve,
    saved_versions,
)


def _builders():
    return load_script("tests/fixtures/make_fixtures.py", "hfmat_make_fixtures")


B = _builders()
TEXT = "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n"


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory):
    return B.build_test_lm_folder(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_lm_and_tokenizer_load_by_repo_id_offline(lm_folder, hf_cache):
    hf_cache("hfmat-test/tiny-lm", lm_folder)
    tok = AutoTokenizer.from_pretrained("hfmat-test/tiny-lm")
    model = AutoModelForCausalLM.from_pretrained("hfmat-test/tiny-lm")
    reference = AutoModelForCausalLM.from_pretrained(lm_folder)
    assert isinstance(tok, PreTrainedTokenizerFast) and not isinstance(tok, GPT2Tokenizer)
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    assert tok.convert_ids_to_tokens(ids[0])[:3] == ["<bos>", "data_", "Sr"]
    assert tok.decode(ids[0], skip_special_tokens=True) == TEXT
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    assert load(AutoModelForCausalLM, "hfmat-test/tiny-lm").config.n_embd == 16


def test_resolve_returns_local_folders_unchanged(lm_folder):
    assert resolve(lm_folder) == lm_folder
    with pytest.raises(FileNotFoundError, match="not a Hub repo id"):
        resolve(lm_folder / "missing" / "deeper")
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve(lm_folder / "config.json")


def test_repo_not_in_cache_says_how_to_fix():
    with pytest.raises(NotCachedError) as info:
        resolve("hfmat-test/never-downloaded")
    message = str(info.value)
    assert "hfmat-test/never-downloaded" in message and "not in the local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE=1" in message and "hf download hfmat-test/never-downloaded" in message
    with pytest.raises(NotCachedError, match="--repo-type dataset"):
        resolve("hfmat-test/never-downloaded", repo_type="dataset")
    assert "ships these" not in message  # an ORG/NAME id is not taken for a shipped name
    with pytest.raises(NotCachedError, match="Did you mean the shipped cif-gpt2-perov5\\?") as info:
        resolve("cif-gpt2-perov6")  # a bare name: the shipped names are listed
    assert "crystal-diffusion-perov5-gen, " in str(info.value)


def test_truncated_weights_named_before_loading(lm_folder, hf_cache, tmp_path):
    broken = Path(shutil.copytree(lm_folder, tmp_path / "broken"))
    weights = broken / "model.safetensors"
    assert check_safetensors(weights) > 0
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CorruptWeightsError, match=r"model\.safetensors is truncated"):
        check_safetensors(weights)
    hf_cache("hfmat-test/broken-lm", broken)
    with pytest.raises(CorruptWeightsError, match=r"snapshots/0+/model\.safetensors is truncated"):
        load(AutoModelForCausalLM, "hfmat-test/broken-lm")


@pytest.mark.parametrize(
    "garbage, match",
    [
        (b"\x01\x02", "only 2 bytes"),
        (b"\xff" * 8 + b"{}", "header claims"),
        (b"\x02" + b"\0" * 7 + b"[]", "not a JSON object"),
    ],
)
def test_corrupt_headers_named(tmp_path, garbage, match):
    path = tmp_path / "model.safetensors"
    path.write_bytes(garbage)
    with pytest.raises(CorruptWeightsError, match=match):
        check_safetensors(path)


def test_folder_from_other_versions_names_them(lm_folder, tmp_path):
    """A config key renamed by some other transformers version: loading fails, the error says which
    versions saved the folder."""
    old = Path(shutil.copytree(lm_folder, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    config["transformers_version"] = "4.30.0"
    config["hidden_size_renamed"] = config.pop("n_embd")  # GPT-2 falls back to 768 wide: shapes mismatch
    (old / "config.json").write_text(json.dumps(config))
    assert saved_versions(old)["transformers"] == "4.30.0"
    with pytest.raises(IncompatibleArtifactError) as info:
        load(AutoModelForCausalLM, old)
    message = str(info.value)
    assert "saved by transformers 4.30.0 (installed: " in message and "'transformers==4.30.0'" in message


def test_failure_with_matching_versions_is_not_blamed_on_versions(lm_folder, tmp_path):
    bad = Path(shutil.copytree(lm_folder, tmp_path / "bad"))
    config = json.loads((bad / "config.json").read_text())
    config["n_embd"] = 32
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception) as info:
        load(AutoModelForCausalLM, bad)
    assert not isinstance(info.value, IncompatibleArtifactError)


def test_dataset_loads_from_cache_by_repo_id(examples_dir, hf_cache, tmp_path):
    from hfmat.data import load_crystal_dataset, to_hub_layout

    ds = load_crystal_dataset(examples_dir)
    to_hub_layout(ds, tmp_path / "examples-ds", name="hfmat-examples", license="mit")
    hf_cache("hfmat-test/examples", tmp_path / "examples-ds", repo_type="dataset")
    local = snapshot_download("hfmat-test/examples", repo_type="dataset")
    again = load_crystal_dataset(local)
    assert again["train"]["material_id"] == ds["train"]["material_id"]
    assert again["train"]["formula"] == ds["train"]["formula"]
    by_id = load_crystal_dataset("hfmat-test/examples")
    assert by_id["train"]["cif"] == ds["train"]["cif"]


def test_tokenizer_repo_loads_by_repo_id(hf_cache, tmp_path):
    """A tokenizer-only repo (no config.json). transformers 5.24's AutoTokenizer looks for config.json
    first and, offline, cannot tell a file the repo lacks from one not downloaded, so by repo id it
    needs hfmat.hub.load (which resolves the cached snapshot) or PreTrainedTokenizerFast."""
    from hfmat.tokenization import build_tokenizer

    folder = B.build_tokenizer_folder(tmp_path / "tok", repo_id="hfmat-test/cif-tokenizer")
    hf_cache("hfmat-test/cif-tokenizer", folder)
    reference = build_tokenizer()
    for tok in (
        load(AutoTokenizer, "hfmat-test/cif-tokenizer"),
        PreTrainedTokenizerFast.from_pretrained("hfmat-test/cif-tokenizer"),
    ):
        assert tok(TEXT)["input_ids"] == reference(TEXT)["input_ids"]
        assert tok.get_vocab() == reference.get_vocab()
        assert tok.decode(tok(TEXT)["input_ids"], skip_special_tokens=True) == TEXT

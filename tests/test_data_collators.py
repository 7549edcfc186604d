"""hfmat.data.CausalLMCollator: padding and packing for causal-LM training."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hfmat.data import CausalLMCollator, DataError
from hfmat.tokenization import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer):
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    body = [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14], [15]]
    return [{"input_ids": [bos, *ids, eos], "material_id": f"m{i}"} for i, ids in enumerate(body)]


def test_pad_mode(tokenizer, rows):
    out = CausalLMCollator(tokenizer)(rows)
    pad = tokenizer.pad_token_id
    assert pad != tokenizer.eos_token_id
    assert out["input_ids"].shape == (4, 7) and out["input_ids"].dtype == torch.long
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        assert out["input_ids"][i, :n].tolist() == row["input_ids"]
        assert (out["input_ids"][i, n:] == pad).all()
        assert out["attention_mask"][i].tolist() == [1] * n + [0] * (7 - n)
        assert out["labels"][i, :n].tolist() == row["input_ids"]  # <eos> is learned
        assert (out["labels"][i, n:] == -100).all()
    multiple = CausalLMCollator(tokenizer, pad_to_multiple_of=8)(rows)
    assert multiple["input_ids"].shape == (4, 8)


def test_pack_mode_layout(tokenizer, rows):
    out = CausalLMCollator(tokenizer, mode="pack", max_length=10)(rows)
    # first fit in order: [5 + 4 tokens] [7 + 3] -> rows of 9 and 10 tokens
    assert out["input_ids"].shape == (2, 10) and "attention_mask" not in out
    assert out["input_ids"][0, :9].tolist() == rows[0]["input_ids"] + rows[1]["input_ids"]
    assert out["input_ids"][0, 9].item() == tokenizer.pad_token_id
    assert out["input_ids"][1].tolist() == rows[2]["input_ids"] + rows[3]["input_ids"]
    assert out["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0]
    assert out["position_ids"][1].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2]
    labels = out["labels"][0].tolist()
    assert labels[0] == -100 and labels[5] == -100 and labels[9] == -100  # sequence starts, padding
    assert labels[1:5] == rows[0]["input_ids"][1:] and labels[6:9] == rows[1]["input_ids"][1:]


def test_packed_rows_attend_only_within_each_cif(tokenizer, rows):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2, n_positions=32)
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    model = GPT2LMHeadModel(config).eval()
    out = CausalLMCollator(tokenizer, mode="pack", max_length=10)(rows)
    with torch.no_grad():
        packed = model(input_ids=out["input_ids"], position_ids=out["position_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([rows[1]["input_ids"]]), use_cache=False).logits
    assert torch.allclose(packed[0, 5:9], alone[0], atol=1e-5)


def test_collator_errors(tokenizer, rows):
    same = copy.deepcopy(tokenizer)
    same.pad_token = same.eos_token
    with pytest.raises(DataError, match="<pad> and <eos> share"):
        CausalLMCollator(same)
    with pytest.raises(DataError, match="needs max_length"):
        CausalLMCollator(tokenizer, mode="pack")
    with pytest.raises(DataError, match="7 tokens > max_length=6"):
        CausalLMCollator(tokenizer, mode="pack", max_length=6)(rows)
    with pytest.raises(DataError, match="no 'input_ids'"):
        CausalLMCollator(tokenizer)([{"text": "x"}])

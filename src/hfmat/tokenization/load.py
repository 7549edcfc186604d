"""Getting the tokenizer: from a folder or the Hub (plain ``AutoTokenizer``), or the built-in default."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hfmat.tokenization.build import build_tokenizer


@lru_cache(maxsize=1)
def _default() -> PreTrainedTokenizerFast:
    return build_tokenizer()


def load_tokenizer(path: str | Path | None = None, **kwargs) -> PreTrainedTokenizerFast:
    """``path=None``: the default hfmat tokenizer, built in memory (the same vocabulary, ids and
    files as the shipped ``tokenizer/`` folder). Otherwise a folder or Hub repo id, loaded with
    ``AutoTokenizer.from_pretrained`` (no remote code)."""
    if path is None:
        return _default()
    return AutoTokenizer.from_pretrained(str(path), **kwargs)


def encode_for_training(tokenizer, texts: list[str]) -> list[list[int]]:
    """Language-model training ids: ``<bos>`` + text + ``<eos>`` for each text."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [[bos, *row, eos] for row in ids]

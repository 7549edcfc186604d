"""The canonical writer's tags come from one list (hfmat.cif.tags), and each is one token of the
shipped tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from hfmat.cif import structure_to_cif
from hfmat.cif.tags import (
    ATOM_SITE_LOOP_TAGS,
    ATOM_TYPE_LOOP_TAGS,
    CANONICAL_TAGS,
    HEADER_TAGS,
    SYMMETRY_LOOP_TAGS,
)
from hfmat.examples import example_structures
from hfmat.tokenization.vocab import token_to_id

SHIPPED_TOKENIZER = Path(__file__).resolve().parents[1] / "tokenizer"


def written_tags(text: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in text.splitlines() if line.startswith("_")]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [
        structure_to_cif(s, atom_props=props)
        for s in example_structures().values()
        for props in (False, True)
    ]


def test_the_writer_emits_the_canonical_tags_block_by_block(texts):
    for text in texts:
        props = "_atom_type_symbol" in text
        loop = ATOM_TYPE_LOOP_TAGS if props else ()
        assert written_tags(text) == [*HEADER_TAGS, *loop, *SYMMETRY_LOOP_TAGS, *ATOM_SITE_LOOP_TAGS]
    assert {t for text in texts for t in written_tags(text)} == set(CANONICAL_TAGS)


def test_every_written_tag_is_one_token_of_the_shipped_tokenizer(texts):
    tok = AutoTokenizer.from_pretrained(SHIPPED_TOKENIZER)
    ids = token_to_id()
    # the vocabulary's tag block starts with the canonical tags, in this order (frozen ids)
    assert [ids[t] for t in CANONICAL_TAGS] == list(range(448, 448 + len(CANONICAL_TAGS)))
    for text in texts:
        tokens = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
        assert [t for t in tokens if t.startswith("_")] == written_tags(text)
        assert all(tok.convert_tokens_to_ids(t) == ids[t] for t in written_tags(text))

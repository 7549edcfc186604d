"""benchmarks/bench_tokenizer.py: its two pure-Python tokenizers are what their labels say."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_tokenizer.py")


CIF = "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M   Pm-3m\n_cell_length_a   3.9050\n# made by hand\n"


def test_crystallm_algorithm_does_what_crystallms_tokenizer_does(bench):
    """Space group marked after its tag, runs of spaces collapsed, words outside the vocabulary
    <unk>, a vocabulary list of about 370 entries in CrystaLLM's order (elements first)."""
    algo = bench.CrystaLLMTokenizerAlgorithm()
    assert 360 <= len(algo.tokens) <= 380 and isinstance(algo.tokens, list)
    assert algo.tokens[:3] == ["H", "He", "Li"] and "Po" not in algo.tokens and "Pu" in algo.tokens
    tokens = algo.tokenize(CIF)
    assert tokens[:8] == ["data_", "Sr", "1", "Ti", "1", "O", "3", "\n"]
    assert tokens[8:12] == ["_symmetry_space_group_name_H-M", " ", "Pm-3m_sg", "\n"]
    assert tokens[12:15] == ["_cell_length_a", " ", "3"]  # three spaces became one
    # "# made by hand": findall skips "#", each word outside the vocabulary is <unk>
    assert tokens[-8:] == ["\n", " ", "<unk>", " ", "<unk>", " ", "<unk>", "\n"]
    text = algo.decode(algo.encode(CIF))
    assert "Pm-3m\n" in text and "   " not in text  # lossy: whitespace collapsed


def test_the_stand_in_gives_hfmats_ids_and_round_trips(bench):
    from hfmat.tokenization import load_tokenizer

    stand_in, tok = bench.RegexStandIn(), load_tokenizer()
    ids = stand_in.encode(CIF)
    assert ids == tok(CIF, add_special_tokens=False)["input_ids"]
    assert stand_in.decode(ids) == CIF

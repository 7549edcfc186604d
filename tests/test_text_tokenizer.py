"""hfmat.text.tokenizer: the prose tokenizer keeps chemistry whole, round-trips, and loads (with the
text encoder) through plain transformers, with no hfmat import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hfmat.text.tokenizer import general_tokenizer, save_prose_tokenizer, train_prose_tokenizer

TEXTS = [
    "SrTiO3 crystallizes in the cubic Pm-3m space group (No. 221) with the perovskite structure. "
    "It has a direct band gap of 2.1 eV and a formation heat of -0.50 eV/atom.",
    "ZnO crystallizes in the hexagonal P6_3mc space group (No. 186) with the wurtzite structure.",
    "TiO2, a tetragonal crystal",
    "MgAl2O4",
    "NaCl, a cubic crystal",
] * 20


@pytest.fixture(scope="module")
def tok():
    return train_prose_tokenizer(TEXTS, vocab_size=300)


def test_elements_and_formulas_are_whole(tok):
    assert tok.tokenize("ZnO is a wide bandgap semiconductor")[:2] == ["Zn", "O"]
    assert tok.tokenize("SrTiO3")[:4] == ["Sr", "Ti", "O", "3"]
    assert tok.tokenize("Lu(SiPd)2") == ["Lu", "(", "Si", "Pd", ")", "2"]
    # never seen in training, still one token each: every element is in the vocabulary
    assert tok.tokenize("CsPbI3") == ["Cs", "Pb", "I", "3"]
    # "The" is cut out as a word, not as thorium + "e" (WordPiece may then split the word)
    pieces = [p for p, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("The structure")]
    assert pieces == ["The", " structure"]


def test_space_groups_are_whole_where_the_text_says_so(tok):
    tokens = tok.tokenize("in the tetragonal P4_2/mnm space group (No. 136)")
    assert " P4_2/mnm" in tokens and " 136" in tokens
    # the leading space keeps the group apart from the element, as in the CIF tokenizer
    assert " Pm" in tok.tokenize("in the Pm space group") and tok.tokenize("Pm2O3")[0] == "Pm"


@pytest.mark.parametrize(
    "text",
    [
        *TEXTS[:5],
        "ZnO is a wide bandgap semiconductor",
        "Bond lengths are 1.95 Å; 90°.",
        "  two  spaces\nand #hash",
    ],
)
def test_decode_gives_the_text_back(tok, text):
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_general_tokenizer_splits_chemistry_differently(tok):
    general = general_tokenizer(TEXTS, vocab_size=len(tok))
    assert general.decode(general("ZnO")["input_ids"]) == "ZnO"
    assert "Pm-3m" not in general.tokenize("the cubic Pm-3m space group")


def test_saved_folders_load_with_plain_transformers(tok, tmp_path):
    from transformers import BertModel

    from hfmat.text import text_encoder_config

    save_prose_tokenizer(tok, tmp_path / "tokenizer")
    BertModel(
        text_encoder_config(tok, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    ).save_pretrained(tmp_path / "text_encoder")
    # a BERT config.json beside the tokenizer must not turn it into a BertTokenizer
    save_prose_tokenizer(tok, tmp_path / "text_encoder")
    code = f"""
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
out = {{}}
for folder in ("tokenizer", "text_encoder"):
    t = AutoTokenizer.from_pretrained({str(tmp_path)!r} + "/" + folder)
    out[folder] = [type(t).__name__, t.tokenize("ZnO is a wide bandgap semiconductor")[:2]]
m = AutoModel.from_pretrained({str(tmp_path)!r} + "/text_encoder")
enc = t(["SrTiO3", "ZnO, a hexagonal crystal"], padding=True, return_tensors="pt", return_token_type_ids=False)
out["model"] = [type(m).__name__, list(m(**enc).pooler_output.shape)]
out["hfmat"] = sorted(k for k in sys.modules if k.startswith("hfmat"))
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["hfmat"] == []
    assert out["tokenizer"][1] == out["text_encoder"][1] == ["Zn", "O"]
    assert "Bert" not in out["text_encoder"][0]
    assert out["model"] == ["BertModel", [2, 16]]

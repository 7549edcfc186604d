"""hfmat's CIF tokenizer: vocabulary and id order, exact round trips, chemistry-aware cutting,
the shipped folder, loading with plain transformers, the CLI."""

from __future__ import annotations

import csv
import filecmp
import json
import string
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfmat.chemistry import ELEMENTS, space_group_symbols
from hfmat.cli import main
from hfmat.tokenization import (
    UnrepresentableTextError,
    check_representable,
    digit_token_ids,
    element_token_ids,
    encode_for_training,
    load_tokenizer,
    save_tokenizer,
    space_group_token_ids,
    special_token_ids,
    tag_token_ids,
    vocabulary,
)
from hfmat.tokenization.vocab import CANONICAL_TAGS

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tokenizer"
csv.field_size_limit(sys.maxsize)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def tokens(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])


def roundtrip(tok, text: str) -> str:
    return tok.decode(tok(text)["input_ids"], skip_special_tokens=True)


def read_cifs(path: Path, every: int) -> list[str]:
    with path.open(newline="") as f:
        return [row["cif"] for i, row in enumerate(csv.DictReader(f)) if i % every == 0]


# --- vocabulary -------------------------------------------------------------------------------


def test_vocabulary_id_order_is_the_documented_one():
    vocab = vocabulary()
    assert len(vocab) == len(set(vocab)) == 551
    assert special_token_ids() == {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
    assert element_token_ids() == {el: z + 3 for z, el in enumerate(ELEMENTS, start=1)}
    assert space_group_token_ids() == {sg: n + 121 for n, sg in enumerate(space_group_symbols(), start=1)}
    assert digit_token_ids() == {str(d): 352 + d for d in range(10)}
    assert vocab[362] == "\n" and vocab[367] == " " and vocab[374] == " " * 8
    tags = tag_token_ids()
    assert [tags[t] for t in ("data_", "loop_", "'x, y, z'")] == [445, 446, 447]
    assert [tags[t] for t in CANONICAL_TAGS] == list(range(448, 448 + len(CANONICAL_TAGS)))


def test_vocabulary_covers_printable_ascii_and_the_cif_tags():
    vocab = set(vocabulary())
    assert set(string.printable) <= vocab
    for tag in (
        "_atom_site_attached_hydrogens",
        "_symmetry_equiv_pos_as_xyz",
        "_space_group_symop_operation_xyz",
        "_cell_measurement_temperature",
        "_atom_type_ionic_radius",
        "_atom_type_electronegativity",
    ):
        assert tag in vocab


def test_special_tokens(tok):
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (
        "<bos>",
        "<eos>",
        "<pad>",
        "<unk>",
    )
    assert tok.pad_token_id != tok.eos_token_id
    assert len(tok) == 551


# --- cutting --------------------------------------------------------------------------------


def test_formula_in_prose_and_english_words(tok):
    assert tokens(tok, "ZnO is a wide bandgap semiconductor")[:3] == ["Zn", "O", " "]
    assert tokens(tok, "The") == ["T", "h", "e"]
    assert tokens(tok, "This Nobody Cat") == [
        "T",
        "h",
        "i",
        "s",
        " ",
        "N",
        "o",
        "b",
        "o",
        "d",
        "y",
        " ",
        "C",
        "a",
        "t",
    ]
    assert tokens(tok, "Lu(SiPd)2, Fe0.5Ni0.5") == [
        "Lu",
        "(",
        "Si",
        "Pd",
        ")",
        "2",
        ",",
        " ",
        "Fe",
        "0",
        ".",
        "5",
        "Ni",
        "0",
        ".",
        "5",
    ]
    assert tokens(tok, "xNaBe") == ["x", "N", "a", "B", "e"]  # not a formula word: no Na, no Be
    assert tokens(tok, "data_Sr1Ti1O3") == ["data_", "Sr", "1", "Ti", "1", "O", "3"]


def test_every_element_is_one_token_in_a_formula(tok):
    ids = element_token_ids()
    two, space = tok.convert_tokens_to_ids("2"), tok.convert_tokens_to_ids(" ")
    for el in ELEMENTS:
        assert tok(f"{el}2 {el}", add_special_tokens=False)["input_ids"] == [ids[el], two, space, ids[el]]
        assert tok.decode([ids[el]]) == el


def test_space_group_tokens_are_distinct_from_elements_and_numbers(tok):
    sg_ids, el_ids = space_group_token_ids(), element_token_ids()
    tag = "_symmetry_space_group_name_H-M"
    assert tokens(tok, f"{tag} Pm\n") == [tag, " Pm", "\n"]
    assert tok(f"{tag} Pm", add_special_tokens=False)["input_ids"][1] == sg_ids["Pm"] != el_ids["Pm"]
    assert tokens(tok, f"{tag}   P1\n") == [tag, "  ", " P1", "\n"]  # pymatgen's three spaces
    assert tokens(tok, "Pm P1") == ["Pm", " ", "P", "1"]  # elsewhere: element, letter + digit
    assert tokens(tok, "P P1 1") == ["P", " ", "P", "1", " ", "1"]  # the site label P1
    assert tokens(tok, f"{tag} 'P 1'") == [tag, " ", "'", "P", " ", "1", "'"]  # quoted: characters
    for sg, i in sg_ids.items():
        assert tok(f"{tag} {sg}\n", add_special_tokens=False)["input_ids"] == [
            tag_token_ids()[tag],
            i,
            tok.convert_tokens_to_ids("\n"),
        ]
        assert tok.decode([i]) == " " + sg


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt"]),
    st.integers(0, 6),
    st.sampled_from(space_group_symbols()),
    st.sampled_from(["", "\n", " ", "\t", "'", "x", "1"]),
)
def test_space_group_token_exactly_after_its_tag(tok, tag, gap, sg, end):
    text = f"{tag}{' ' * gap}{sg}{end}"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    expected = 1 <= gap <= 4 and end in ("", "\n", " ", "\t")
    assert (space_group_token_ids()[sg] in ids) == expected
    if expected:
        assert tok.convert_ids_to_tokens(ids)[0] == tag and " " + sg in tok.convert_ids_to_tokens(ids)


def test_tags_digits_and_spaces(tok):
    assert tokens(tok, "_cell_length_a   4.59\n") == ["_cell_length_a", "   ", "4", ".", "5", "9", "\n"]
    assert tokens(tok, "_cell_length_ab")[0] == "_"  # not a tag: no tag token inside a longer name
    assert tokens(tok, " " * 11) == [" " * 8, " " * 3]
    assert tokens(tok, "1 'x, y, z'\nloop_\n") == ["1", " ", "'x, y, z'", "\n", "loop_", "\n"]


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["perov_5/val.csv", "carbon_24/test.csv", "mp_20_subset/train.csv"])
def test_raw_cifs_round_trip_exactly(tok, shared_data, name):
    cifs = read_cifs(shared_data / name, every=10)
    ids = tok(cifs)["input_ids"]
    assert all(row[0] == tok.bos_token_id and tok.eos_token_id not in row for row in ids)
    assert all(tok.unk_token_id not in row for row in ids)
    assert [tok.decode(row, skip_special_tokens=True) for row in ids] == cifs


def test_canonical_cifs_round_trip_exactly(tok, shared_data):
    from pymatgen.core import Structure

    from hfmat.cif import structure_to_cif

    texts = []
    for name in ("perov_5/test.csv", "mp_20_subset/val.csv", "carbon_24/val.csv"):
        for cif in read_cifs(shared_data / name, every=400):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                texts.append(structure_to_cif(Structure.from_str(cif, fmt="cif")))
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert [tok.decode(row) for row in ids] == texts
    sg_ids = set(space_group_token_ids().values())
    assert all(sum(i in sg_ids for i in row) == 1 for row in ids)  # the space group is one token


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=string.printable, max_size=200))
def test_any_printable_ascii_round_trips(tok, text):
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


CIF_WORDS = [
    *ELEMENTS,
    *space_group_symbols(),
    "_symmetry_space_group_name_H-M",
    "_space_group_name_H-M_alt",
    "data_",
    "loop_",
    "'x, y, z'",
    "<eos>",
    "<bos>",
    "<pad>",
    "<unk>",
    " ",
    "   ",
    "\n",
    "\t",
    "The",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.sampled_from(CIF_WORDS), st.text(alphabet=string.printable, max_size=4)), max_size=20
    )
)
def test_cif_like_text_round_trips(tok, parts):
    text = "".join(parts)
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_special_token_text_is_kept_as_text(tok):
    text = "data_X\n<eos><pad>"
    assert roundtrip(tok, text) == text
    assert tok.eos_token_id not in tok(text)["input_ids"]


# --- outside printable ASCII ----------------------------------------------------------------


def test_non_ascii_is_unk_and_check_representable_names_it(tok):
    ids = tok("Fe\u00b2\u207a ok", add_special_tokens=False)["input_ids"]
    assert ids.count(tok.unk_token_id) == 2
    assert check_representable("data_Fe\n") == "data_Fe\n"
    with pytest.raises(UnrepresentableTextError, match=r"'é' \(U\+00E9\) at index 10 \(line 2, column 3\)"):
        check_representable("data_Fe\nCaé")
    with pytest.raises(ValueError):
        check_representable("\x00")


# --- conventions: prompts, training text ------------------------------------------------------


def test_prompt_gets_bos_only_and_training_text_gets_eos(tok):
    ids = tok("data_Sr1Ti1O3\n")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.convert_tokens_to_ids("\n")
    assert tok(["a", "abc"], padding=True)["input_ids"][0][-1] == tok.pad_token_id
    train = encode_for_training(tok, ["data_Sr1Ti1O3\n"])
    assert train == [ids + [tok.eos_token_id]]


# --- shipped folder, loading, CLI -----------------------------------------------------------


def test_shipped_folder_is_what_build_writes(tmp_path):
    written = save_tokenizer(tmp_path / "a")
    assert sorted(p.name for p in written) == ["README.md", "tokenizer.json", "tokenizer_config.json"]
    for name in ("README.md", "tokenizer.json", "tokenizer_config.json"):
        assert filecmp.cmp(tmp_path / "a" / name, SHIPPED / name, shallow=False), f"tokenizer/{name} is stale"
    config = json.loads((SHIPPED / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (
        config["model_max_length"] == 1024
        and config["pad_token"] == "<pad>"
        and config["eos_token"] == "<eos>"
    )


def test_shipped_folder_is_a_complete_hub_repo(tmp_path):
    from huggingface_hub import ModelCard

    from hfmat.hub import check_folder

    assert check_folder(SHIPPED).kind == "tokenizer"
    card = ModelCard.load(SHIPPED / "README.md")
    assert card.data.library_name == "transformers" and "tokenizer" in card.data.tags
    assert 'AutoTokenizer.from_pretrained("hfmat/cif-tokenizer")' in card.text
    save_tokenizer(tmp_path / "mine", repo_id="me/my-tokenizer")
    assert 'from_pretrained("me/my-tokenizer")' in (tmp_path / "mine" / "README.md").read_text()


def test_loads_without_hfmat_even_next_to_a_gpt2_config(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((SHIPPED / name).read_bytes())
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 551}))
    code = (
        "import sys\n"
        "from transformers import AutoTokenizer\n"
        f"tok = AutoTokenizer.from_pretrained({str(folder)!r})\n"
        "text = 'data_Zn2O2\\n_symmetry_space_group_name_H-M P6_3mc\\n'\n"
        "ids = tok(text)['input_ids']\n"
        "assert tok.decode(ids, skip_special_tokens=True) == text, ids\n"
        "assert not [m for m in sys.modules if m.startswith('hfmat')]\n"
        "print(type(tok).__name__, ids[:3])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[1, 448" not in out.stdout  # sanity: first ids are <bos>, data_
    assert "[1, 445, 33]" in out.stdout  # <bos>, data_, Zn


def test_load_by_repo_id_from_offline_cache(hf_cache, tok):
    # a tokenizer-only repo has no config.json: hf_cache writes the .no_exist record of it
    hf_cache("hfmat/cif-tokenizer", SHIPPED)
    hub_tok = load_tokenizer("hfmat/cif-tokenizer")
    text = "data_Ti2O4\n_symmetry_space_group_name_H-M P4_2/mnm\n"
    assert hub_tok(text)["input_ids"] == tok(text)["input_ids"]


def test_cli_build_and_encode(tmp_path, capsys):
    assert main(["tokenizer", "build", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "tokenizer.json").is_file()
    assert main(["tokenizer", "encode", "ZnO is"]) == 0
    out = capsys.readouterr().out
    assert "'Zn' 'O' ' ' 'i' 's'" in out and "round trip exact" in out
    f = tmp_path / "x.cif"
    f.write_text("data_Na1Cl1\n")
    assert main(["tokenizer", "encode", "--file", str(f), "--ids"]) == 0
    assert "445\t'data_'" in capsys.readouterr().out


def test_saving_a_loaded_tokenizer_pins_its_class(tmp_path):
    """A tokenizer loaded with AutoTokenizer saves as TokenizersBackend in transformers 5; saved
    through save_tokenizer next to a model it names PreTrainedTokenizerFast and keeps no load-time keys."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(SHIPPED))
    written = save_tokenizer(tmp_path, tokenizer=loaded, card=False)
    assert sorted(p.name for p in written) == ["tokenizer.json", "tokenizer_config.json"]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert not {"is_local", "local_files_only"} & set(config)
    assert (tmp_path / "tokenizer.json").read_bytes() == (SHIPPED / "tokenizer.json").read_bytes()

"""hfmat.lm: prompts, the CIF grammar constraint, batched generation, ``hfmat generate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hfmat.cif import parse_canonical, structure_to_cif
from hfmat.lm import (
    CifConstraint,
    CifLogitsProcessor,
    PromptError,
    composition_prompt,
    generate_cifs,
)
from hfmat.tokenization import load_tokenizer

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "cif-gpt2-perov5"


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def constraint(tok):
    return CifConstraint(tok)


@pytest.fixture(scope="module")
def random_model(tok, tmp_path_factory):
    """A tiny randomly initialised GPT-2 saved as a plain transformers folder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=512,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    folder = tmp_path_factory.mktemp("lm") / "random-gpt2"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, folder


# ------------------------------------------------------------------------------------ prompts


def test_composition_prompt_is_the_data_line_in_formula_order():
    assert composition_prompt("SrTiO3") == "data_Sr1Ti1O3\n"
    assert composition_prompt("Sr1Ti1O3") == "data_Sr1Ti1O3\n"
    assert composition_prompt("TiO2", formula_units=2) == "data_Ti2O4\n"
    assert composition_prompt("O3SrTi") == "data_Sr1Ti1O3\n"
    assert composition_prompt("SrTiO3", spacegroup="Pm-3m") == (
        "data_Sr1Ti1O3\n_symmetry_space_group_name_H-M Pm-3m\n"
    )
    assert composition_prompt("SrTiO3", spacegroup=221).endswith(" Pm-3m\n")


@pytest.mark.parametrize(
    "composition, kwargs, message",
    [
        ("", {}, "empty composition"),
        ("SrXx3", {}, "unknown element"),
        ("Sr0.5TiO3", {}, "positive whole numbers"),
        ("Sr(((", {}, "cannot parse"),
        ("SrTiO3", {"spacegroup": "Pm-4m"}, "unknown space-group symbol"),
        ("SrTiO3", {"spacegroup": 231}, "outside 1..230"),
        ("SrTiO3", {"formula_units": 0}, "formula units"),
    ],
)
def test_bad_prompts_raise_clear_errors(composition, kwargs, message):
    with pytest.raises(PromptError, match=message):
        composition_prompt(composition, **kwargs)


def test_too_many_atoms_for_the_context_is_refused_before_generation(tok, random_model):
    model, _ = random_model
    huge = "".join(f"{el}999" for el in ("Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "O"))
    with pytest.raises(PromptError, match="more than the model's context"):
        generate_cifs(model, tok, compositions=[huge], num_samples=1)
    with pytest.raises(PromptError, match="unknown element"):
        generate_cifs(model, tok, compositions=["SrTiO3", "Qq2"], num_samples=1)


# -------------------------------------------------------------------------------- constraint


def _canonical_cifs(shared_data, n=12):
    import csv

    from pymatgen.core import Structure

    from hfmat.examples import example_structures

    cifs = [structure_to_cif(s) for s in example_structures().values()]
    csv.field_size_limit(10**9)
    for name in ("perov_5/val.csv", "mp_20_subset/val.csv"):
        with open(shared_data / name, newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                if i >= n:
                    break
                cifs.append(structure_to_cif(Structure.from_str(row["cif"], fmt="cif")))
    return cifs


def test_real_canonical_cifs_pass_the_constraint_token_by_token(tok, constraint, shared_data):
    """The tokenizer's own tokens of real canonical CIFs are always among the allowed ones."""
    cifs = _canonical_cifs(shared_data)
    assert len(cifs) > 20
    for cif in cifs:
        assert constraint.accepts(cif)
        ids = tok(cif)["input_ids"] + [tok.eos_token_id]
        state = constraint.initial()
        for position, token_id in enumerate(ids[1:], start=1):
            mask = constraint.mask(state)
            assert mask[token_id], (
                f"token {tok.convert_ids_to_tokens([token_id])} at {position} refused: {cif[:40]!r}"
            )
            if token_id == tok.eos_token_id:
                break
            state = constraint.advance(state, token_id)
        assert constraint.grammar.is_end(state)


def test_constraint_refuses_what_the_grammar_forbids(constraint):
    from hfmat.examples import example_structures

    cif = structure_to_cif(example_structures()["NaCl_rocksalt"])
    assert constraint.accepts(cif)
    # a wrong reduced formula, a wrong space-group number, an element outside the formula,
    # too many atoms: each breaks the grammar
    first = cif.split("\n", 1)[0]
    assert not constraint.accepts(
        cif.replace("_symmetry_Int_Tables_number 225", "_symmetry_Int_Tables_number 224")
    )
    assert not constraint.accepts(cif.replace("Cl Cl1 4", "Na Na1 4"))
    assert not constraint.accepts(cif.replace("Cl Cl1 4", "Cl Cl1 8"))
    assert not constraint.accepts(cif.replace("_cell_length_a 5.6400", "_cell_length_a 5.64"))
    assert not constraint.accepts(cif.replace(first, "data_Na4Cl3"))
    assert not constraint.accepts(cif.rstrip("\n"))  # the last row is unfinished


def test_processor_masks_and_advances_incrementally(tok, constraint):
    prompt = [tok.bos_token_id] + tok("data_Sr1Ti1O3\n", add_special_tokens=False)["input_ids"]
    proc = CifLogitsProcessor(constraint)
    ids = torch.tensor([prompt, prompt])
    scores = proc(ids, torch.zeros(2, len(tok)))
    allowed = torch.isfinite(scores[0]).nonzero().flatten().tolist()
    assert tok.convert_ids_to_tokens(allowed) == ["_symmetry_space_group_name_H-M"]
    sg_tag = allowed[0]
    scores = proc(torch.cat([ids, torch.tensor([[sg_tag], [sg_tag]])], dim=1), torch.zeros(2, len(tok)))
    names = set(tok.convert_ids_to_tokens(torch.isfinite(scores[0]).nonzero().flatten().tolist()))
    assert " Pm-3m" in names and " P4_2/mnm" in names and " " not in names and len(names) == 230


# -------------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def shipped():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (SHIPPED / "model.safetensors").is_file(), "the shipped checkpoint is missing"
    return AutoModelForCausalLM.from_pretrained(SHIPPED), AutoTokenizer.from_pretrained(SHIPPED)


def test_constrained_generation_writes_grammatical_cifs_in_batches(shipped, constraint):
    model, tok = shipped
    comps = ["SrTiO3", "Ti2O4", "NaCl"]
    kw = dict(constraint=constraint, validate=False, batch_size=4)
    out = generate_cifs(model, tok, compositions=comps, num_samples=2, seed=3, **kw)
    assert len(out) == 6
    assert [o.composition for o in out] == ["Sr1Ti1O3"] * 2 + ["Ti2O4"] * 2 + ["Na1Cl1"] * 2
    for o in out:
        assert o.finished
        assert constraint.accepts(o.text), o.text
        assert parse_canonical(o.text) is not None  # every field reads back
    sums = {o.text.split("_chemical_formula_sum ", 1)[1].split("\n", 1)[0] for o in out}
    assert sums == {"'Sr1 Ti1 O3'", "'Ti2 O4'", "'Na1 Cl1'"}
    # batches of the same size and prompt length one after another: each starts its grammar afresh
    same = generate_cifs(
        model, tok, compositions=["SrTiO3"] * 6, num_samples=1, seed=5, **kw | {"batch_size": 2}
    )
    assert all(o.finished and constraint.accepts(o.text) for o in same)
    # the same call with the same seed gives the same samples; another seed other samples
    first = generate_cifs(model, tok, compositions=comps[:1], num_samples=2, seed=3, **kw)
    again = generate_cifs(model, tok, compositions=comps[:1], num_samples=2, seed=3, **kw)
    other = generate_cifs(model, tok, compositions=comps[:1], num_samples=2, seed=4, **kw)
    assert [o.text for o in again] == [o.text for o in first]
    assert [o.text for o in other] != [o.text for o in first]


def test_rejection_sampling_redraws_only_the_invalid_samples(shipped, constraint):
    model, tok = shipped
    comps = ["SrTiO3", "BaZrO3", "KNbO3", "LaAlO3", "CsPbI3", "NaCl"]
    kw = dict(constraint=constraint, batch_size=8, temperature=1.5, seed=2)
    once = generate_cifs(model, tok, compositions=comps, num_samples=2, **kw)
    retried = generate_cifs(model, tok, compositions=comps, num_samples=2, max_attempts=4, **kw)
    assert not all(o.valid for o in once), "T 1.5 should give some invalid first draws"
    assert all(o.attempts == 1 and o.valid_at_first_draw == o.valid for o in once)
    assert all(o.valid_at_first_draw == (o.valid and o.attempts == 1) for o in retried)
    for a, b in zip(once, retried):
        assert (a.composition, a.index) == (b.composition, b.index)
        if a.valid:  # a valid first draw is kept as it was
            assert b.attempts == 1 and b.text == a.text
        else:  # an invalid one is drawn again: valid at some draw, or invalid after all four
            assert b.attempts > 1 and b.text != a.text
            assert b.valid or b.attempts == 4
    assert sum(o.valid for o in retried) > sum(o.valid for o in once)
    again = generate_cifs(model, tok, compositions=comps, num_samples=2, max_attempts=4, **kw)
    assert [o.text for o in again] == [o.text for o in retried]  # reproducible under the seed
    for bad, message in [
        (dict(max_attempts=0), "max_attempts must be a positive integer"),
        (dict(max_attempts=2, validate=False), "needs validate=True"),
        (dict(max_attempts=2, temperature=0), "greedy decoding redraws the same text"),
    ]:
        with pytest.raises(PromptError, match=message):
            generate_cifs(model, tok, compositions=comps[:1], **{**kw, **bad})


def test_unconditional_and_unconstrained_generation(tok, random_model, constraint):
    from hfmat.lm.grammar import formula_context

    model, _ = random_model
    free = generate_cifs(
        model, tok, compositions=None, num_samples=2, seed=1, constraint=constraint, validate=False
    )
    for o in free:
        # random weights may pick a formula too large to finish in the context: what was written
        # is still a grammatical prefix with a well-formed formula
        assert formula_context(o.text.split("\n", 1)[0][len("data_") :]) is not None
        assert constraint.grammar.feed(constraint.initial(), o.text) is not None
        assert constraint.accepts(o.text) == o.finished
    raw = generate_cifs(
        model, tok, compositions=["SrTiO3"], num_samples=2, constrained=False, max_new_tokens=20
    )
    assert all(o.num_new_tokens <= 20 for o in raw)
    assert all(not o.valid and not o.finished for o in raw)  # cut short: no valid CIF
    assert all(not constraint.accepts(o.text) for o in raw)


def test_generation_takes_the_models_own_temperature(tok, random_model):
    """temperature=None samples at the checkpoint's generation_config temperature; do_sample false
    there means greedy; an explicit temperature overrides both."""
    import copy

    from hfmat.lm.generation import model_temperature

    base, _ = random_model
    model = copy.deepcopy(base)

    def texts(**kwargs):
        out = generate_cifs(
            model,
            tok,
            compositions=["SrTiO3"],
            num_samples=2,
            constrained=False,
            max_new_tokens=24,
            seed=3,
            validate=False,
            **kwargs,
        )
        return [o.text for o in out]

    model.generation_config.temperature, model.generation_config.do_sample = 0.5, True
    assert model_temperature(model) == 0.5
    assert texts() == texts(temperature=0.5)
    assert texts() != texts(temperature=1.0)
    model.generation_config.do_sample = False
    assert model_temperature(model) == 0.0
    assert texts() == texts(temperature=0)


def test_cli_generate_records_the_temperature_it_sampled_at(tok, random_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from hfmat.cli import main

    _, folder = random_model
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.generation_config.temperature, model.generation_config.do_sample = 0.7, True
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    for extra, expected in (([], 0.7), (["--temperature", "1.5"], 1.5)):
        out = tmp_path / f"out{expected}"
        args = ["generate", "--model", str(tmp_path / "m"), "-n", "1", "--max-new-tokens", "8"]
        assert main([*args, "--composition", "SrTiO3", "--out", str(out), *extra]) == 0
        assert json.loads((out / "summary.json").read_text())["temperature"] == expected


# ------------------------------------------------------------------------------------- CLI


def test_cli_generate_writes_cifs_and_a_summary(tmp_path, capsys):
    from hfmat.cli import main

    rc = main(
        ["generate", "--model", str(SHIPPED), "--composition", "SrTiO3", "-n", "2", "--out", str(tmp_path)]
    )
    assert rc == 0
    files = sorted(tmp_path.glob("*.cif"))
    assert [f.name for f in files] == ["0000_Sr1Ti1O3.cif", "0001_Sr1Ti1O3.cif"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["file"] for s in summary["files"]] == [f.name for f in files]
    printed = capsys.readouterr().out
    assert "valid" in printed and "0000_Sr1Ti1O3.cif" in printed


def test_cli_generate_max_attempts_records_the_draws(tmp_path, capsys):
    from hfmat.cli import main

    args = [
        "generate",
        "--model",
        str(SHIPPED),
        "--composition",
        "SrTiO3",
        "--composition",
        "KNbO3",
        "-n",
        "3",
    ]
    rc = main([*args, "--temperature", "1.5", "--max-attempts", "3", "--out", str(tmp_path / "r")])
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    record = summary["rejection_sampling"]
    entries = summary["files"]
    assert record["max_attempts"] == 3 and record["draws"] == sum(e["attempts"] for e in entries)
    assert record["valid"] == sum(e["valid"] for e in entries) >= record["valid_first_draw"]
    assert record["valid_first_draw"] == sum(e["valid"] and e["attempts"] == 1 for e in entries)
    assert "valid at the first draw" in capsys.readouterr().out
    rc = main([*args, "--max-attempts", "0", "--out", str(tmp_path / "bad")])
    assert rc == 2 and "--max-attempts must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--composition", "SrXx3"], "unknown element"),
        (["--composition", "SrTiO3", "--spacegroup", "Pm-4m"], "unknown space-group"),
        (["--spacegroup", "Pm-3m"], "needs --composition"),
    ],
)
def test_cli_generate_bad_input(random_model, tmp_path, capsys, extra, message):
    from hfmat.cli import main

    _, folder = random_model
    rc = main(["generate", "--model", str(folder), "-n", "1", "--out", str(tmp_path / "o"), *extra])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- shipped model


def test_shipped_checkpoint_loads_without_hfmat_and_writes_valid_perovskites(shipped, constraint):
    model, tok = shipped
    assert (SHIPPED / "model.safetensors").stat().st_size < 30 * 2**20
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert type(tok).__name__ != "GPT2Tokenizer"
    out = generate_cifs(model, tok, compositions=["SrTiO3"], num_samples=8, seed=0, constraint=constraint)
    for o in out:  # the grammar binds the composition: every sample parses with the prompt's formula
        assert o.finished and o.structure is not None
        assert o.structure.composition.reduced_formula == "SrTiO3"
        assert o.validity["formula_consistency"].passed
    assert any(o.valid for o in out)


# ------------------------------------------------------------------------------- lengths


def test_shipped_tokenizer_and_generation_config_state_the_models_length(shipped):
    model, tok = shipped
    assert tok.model_max_length == model.config.n_positions == 384
    assert "max_length" not in json.loads((SHIPPED / "generation_config.json").read_text())


def test_generate_with_max_new_tokens_warns_about_nothing(shipped, constraint):
    """A saved generation_config.max_length made transformers warn on every
    generate(max_new_tokens=...) ("Both max_new_tokens and max_length seem to have been set")."""
    import logging
    import warnings

    model, tok = shipped
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ids = tok("data_Sr1Ti1O3\n", return_tensors="pt")
            model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
            generate_cifs(
                model, tok, compositions=["SrTiO3"], max_new_tokens=8, constraint=constraint, validate=False
            )
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records] + [str(w.message) for w in caught]
    assert not [m for m in messages if "max_length" in m], messages


def test_generate_cifs_caps_max_new_tokens_at_the_models_positions(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=40, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    with pytest.warns(
        UserWarning, match=r"max_new_tokens=1000 is more than the model has room for: it has 40 positions"
    ):
        out = generate_cifs(model, tok, num_samples=2, max_new_tokens=1000, constrained=False, validate=False)
    prompt = len(tok(out[0].prompt)["input_ids"])  # <bos> + prompt
    assert all(o.num_new_tokens <= 40 - prompt for o in out)
    with pytest.raises(PromptError, match="max_new_tokens must be a positive integer, got 0"):
        generate_cifs(model, tok, max_new_tokens=0, constrained=False)

"""Tokenizer throughput and round trip on every CIF in the shared data.

hfmat's tokenizer (Rust ``tokenizers`` through transformers, batched) against two pure-Python
tokenizers:

- CrystaLLM's tokenizer algorithm, re-implemented here from what its code (``crystallm/_tokenizer.py``
  in github.com/lantunes/CrystaLLM) does on every call: build the space-group alternation and
  mark the symbol after ``_symmetry_space_group_name_H-M`` with ``re.sub``, build the alternation
  of its whole vocabulary (escaped, longest first, then ``\\w+`` and punctuation), collapse runs
  of spaces and tabs to one space, ``re.findall``, test every token for membership in its
  vocabulary *list* (about 370 entries: 89 elements, digits, 31 CIF tags, 13 symbols, the space
  groups) and map it to an id with a dict. Its vocabulary is rebuilt here in the same shape and
  order. It collapses whitespace, so its text does not round-trip.
- a cheaper stand-in over hfmat's own vocabulary (a precompiled alternation and one dict lookup
  per token), which gives the same ids as hfmat's tokenizer.

    .venv/bin/python benchmarks/bench_tokenizer.py [--data ../shared/data] [--repeat 3]

Prints CIFs/s and tokens/s (each tokenizer's own tokens) for all of them (wall clock, best of
--repeat runs; also the Rust backend's ``encode_batch_fast`` alone, without the transformers
wrapper), their speed ratios, tokens per CIF (mean, max; overall and per file), the round-trip
rate and whether hfmat and the stand-in give the same ids. Optionally (--canonical N) the same
token statistics for the canonical form of the first N CIFs of each file (hfmat.cif.structure_to_cif).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

from tokenizers import Regex, Tokenizer, pre_tokenizers
from tqdm import tqdm

from hfmat.chemistry import element_symbol, space_group_symbols
from hfmat.tokenization import load_tokenizer
from hfmat.tokenization.vocab import SPECIAL_TOKENS, UNK, space_group_token, vocabulary

csv.field_size_limit(sys.maxsize)
REPO = Path(__file__).resolve().parents[1]

#: The CIF tags of CrystaLLM's vocabulary: those pymatgen's CifWriter writes, and the atom-type
#: block of its augmented CIFs.
CRYSTALLM_TAGS = (
    "_cell_length_a _cell_length_b _cell_length_c _cell_angle_alpha _cell_angle_beta _cell_angle_gamma "
    "_cell_volume _cell_formula_units_Z _symmetry_space_group_name_H-M _symmetry_Int_Tables_number "
    "_symmetry_equiv_pos_site_id _symmetry_equiv_pos_as_xyz _chemical_formula_structural "
    "_chemical_formula_sum _chemical_name_systematic _atom_site_type_symbol _atom_site_label "
    "_atom_site_symmetry_multiplicity _atom_site_fract_x _atom_site_fract_y _atom_site_fract_z "
    "_atom_site_occupancy _atom_site_attached_hydrogens _atom_site_B_iso_or_equiv _atom_type_symbol "
    "_atom_type_electronegativity _atom_type_radius _atom_type_ionic_radius _atom_type_oxidation_number "
    "loop_ data_"
).split()


class CrystaLLMTokenizerAlgorithm:
    """CrystaLLM's tokenizer algorithm (re-implemented): per call, the space-group and vocabulary
    patterns are rebuilt from their parts, whitespace is collapsed, ``findall`` cuts the text and
    every token is looked up in the vocabulary list (unknown ones become ``<unk>``)."""

    def __init__(self) -> None:
        # elements H..Pu without Po, At, Rn, Fr, Ra (89), digits, tags, symbols, space groups
        elements = [element_symbol(z) for z in range(1, 95) if z not in (84, 85, 86, 87, 88)]
        symbols = ["x", "y", "z", ".", "(", ")", "+", "-", "/", "'", ",", " ", "\n"]
        self.space_groups = list(space_group_symbols())
        self.tokens = [*elements, *map(str, range(10)), *CRYSTALLM_TAGS, *symbols]
        self.tokens += [f"{sg}_sg" for sg in self.space_groups]
        self.escaped = sorted((re.escape(t) for t in self.tokens), key=len, reverse=True)
        self.ids = {t: i for i, t in enumerate([*self.tokens, UNK])}

    def tokenize(self, text: str) -> list[str]:
        groups = "|".join(self.space_groups)
        text = re.sub(rf"(_symmetry_space_group_name_H-M *\b({groups}))\n", r"\1_sg\n", text)
        pattern = "(" + "|".join(self.escaped) + r"|\w+|[\.,;!?])"
        text = re.sub(r"[ \t]+", " ", text)
        return [t if t in self.tokens else UNK for t in re.findall(pattern, text)]

    def encode(self, text: str) -> list[int]:
        return [self.ids[t] for t in self.tokenize(text)]

    def decode(self, ids: list[int]) -> str:
        vocab = [*self.tokens, UNK]
        return "".join(vocab[i].removesuffix("_sg") for i in ids)


class RegexStandIn:
    """A cheaper pure-Python stand-in (not CrystaLLM's algorithm): hfmat's vocabulary, the space
    group found after its tag, everything else cut by one precompiled alternation of all vocabulary
    strings (longest first, then any character), one dict lookup per token."""

    def __init__(self) -> None:
        vocab = vocabulary()
        self.ids = {t: i for i, t in enumerate(vocab)}
        self.vocab = vocab
        groups = {space_group_token(s) for s in space_group_symbols()}
        plain = sorted(
            (t for t in vocab if t not in groups and t not in SPECIAL_TOKENS), key=len, reverse=True
        )
        self.pattern = re.compile("|".join(re.escape(t) for t in plain) + "|.", re.S)
        sg = "|".join(re.escape(s) for s in sorted(space_group_symbols(), key=len, reverse=True))
        self.space_group = re.compile(rf"(?<=_symmetry_space_group_name_H-M)( {{0,3}})( (?:{sg}))(?=\s|\Z)")

    def tokenize(self, text: str) -> list[str]:
        m = self.space_group.search(text)
        if m is None:
            return self.pattern.findall(text)
        gap = [m.group(1)] if m.group(1) else []
        return (
            self.pattern.findall(text[: m.start()])
            + gap
            + [m.group(2)]
            + self.pattern.findall(text[m.end() :])
        )

    def encode(self, text: str) -> list[int]:
        get, unk = self.ids.get, self.ids[UNK]
        return [get(t, unk) for t in self.tokenize(text)]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


def read_cifs(data: Path) -> dict[str, list[str]]:
    cifs = {}
    for path in sorted(data.glob("*/*.csv")):
        with path.open(newline="") as f:
            cifs[f"{path.parent.name}/{path.name}"] = [row["cif"] for row in csv.DictReader(f)]
    if not cifs:
        raise FileNotFoundError(f"no */*.csv under {data}")
    return cifs


def best_time(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def length_stats(name: str, lengths: list[int]) -> str:
    return f"  {name:<26} mean {statistics.mean(lengths):6.1f}  max {max(lengths):5d}  (n={len(lengths)})"


def canonical_stats(tok, by_file: dict[str, list[str]], n: int) -> None:
    from pymatgen.core import Structure

    from hfmat.cif import structure_to_cif

    print(f"tokens per canonical CIF (structure_to_cif, first {n} of each file; + <bos> and <eos> add 2):")
    for name, rows in by_file.items():
        texts = []
        for cif in tqdm(rows[:n], desc=name, leave=False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                texts.append(structure_to_cif(Structure.from_str(cif, fmt="cif")))
        ids = tok(texts, add_special_tokens=False)["input_ids"]
        exact = sum(tok.decode(i) == t for i, t in zip(ids, texts))
        print(length_stats(name, list(map(len, ids))) + f"  round trip {exact}/{len(texts)}")


def main() -> int:
    parser = argparse.ArgumentParser(description="hfmat tokenizer vs CrystaLLM's tokenizer algorithm")
    parser.add_argument("--data", default=REPO.parent / "shared" / "data", type=Path)
    parser.add_argument("--repeat", default=3, type=int, help="timing runs; the best is reported")
    parser.add_argument("--batch-size", default=1000, type=int)
    parser.add_argument(
        "--canonical",
        default=0,
        type=int,
        metavar="N",
        help="also report tokens per canonical CIF for the first N CIFs of each file",
    )
    args = parser.parse_args()

    by_file = read_cifs(args.data)
    cifs = [c for rows in by_file.values() for c in rows]
    tok = load_tokenizer()
    crystallm = CrystaLLMTokenizerAlgorithm()
    stand_in = RegexStandIn()

    def run_hfmat():
        out = []
        for i in range(0, len(cifs), args.batch_size):
            out.extend(tok(cifs[i : i + args.batch_size], add_special_tokens=False)["input_ids"])
        return out

    def run_backend():
        return [e.ids for e in tok.backend_tokenizer.encode_batch_fast(cifs, add_special_tokens=False)]

    # The library's own cost per token: the same backend with the regex replaced by the cheapest
    # split there is (every character its own piece), so nearly all the time is per-token work.
    floor = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    floor.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")

    def run_floor():
        return [e.ids for e in floor.encode_batch_fast(cifs, add_special_tokens=False)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_hf, ids_hf = best_time(run_hfmat, args.repeat)
    t_backend, ids_backend = best_time(run_backend, args.repeat)
    t_crystallm, ids_crystallm = best_time(lambda: [crystallm.encode(c) for c in cifs], args.repeat)
    t_stand_in, ids_stand_in = best_time(lambda: [stand_in.encode(c) for c in cifs], args.repeat)
    t_floor, ids_floor = best_time(run_floor, args.repeat)
    n_tok = sum(map(len, ids_hf))
    exact = sum(tok.decode(ids) == c for ids, c in zip(ids_hf, cifs))
    exact_stand_in = sum(stand_in.decode(ids) == c for ids, c in zip(ids_stand_in, cifs))
    exact_crystallm = sum(crystallm.decode(ids) == c for ids, c in zip(ids_crystallm, cifs))
    unk = crystallm.ids[UNK]
    with_unk = sum(unk in ids for ids in ids_crystallm)
    same = sum(a == b == c for a, b, c in zip(ids_hf, ids_stand_in, ids_backend))

    print(
        f"{len(cifs)} CIFs from {args.data}; {os.cpu_count()} CPUs; "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}; best of {args.repeat}"
    )
    print(f"{'tokenizer':<52}{'CIFs/s':>10}{'tokens/s':>13}{'seconds':>10}")
    rows = (
        ("hfmat tokenizer, batched", t_hf, n_tok),
        ("  its Rust backend alone", t_backend, n_tok),
        ("CrystaLLM's tokenizer algorithm (re-implemented)", t_crystallm, sum(map(len, ids_crystallm))),
        ("pure-Python regex stand-in (precompiled, dict)", t_stand_in, n_tok),
    )
    for name, t, n in rows:
        print(f"{name:<52}{len(cifs) / t:>10.0f}{n / t:>13.0f}{t:>10.3f}")
    print(
        f"speed-up hfmat / CrystaLLM's algorithm: {t_crystallm / t_hf:.2f}x "
        f"(Rust backend alone: {t_crystallm / t_backend:.2f}x); hfmat / stand-in: {t_stand_in / t_hf:.2f}x "
        f"(backend: {t_stand_in / t_backend:.2f}x); CrystaLLM's algorithm takes {t_crystallm / t_stand_in:.1f}x "
        "the stand-in's time"
    )
    floor_tok_s = sum(map(len, ids_floor)) / t_floor
    print(
        f"tokenizers' own cost: {floor_tok_s:.0f} tokens/s with a one-character split "
        f"({1e6 / floor_tok_s:.2f} us per token); at hfmat's {n_tok / len(cifs):.0f} tokens per CIF "
        f"that caps any `tokenizers` tokenizer at {floor_tok_s / n_tok * t_stand_in:.2f}x the stand-in and "
        f"{floor_tok_s / n_tok * t_crystallm:.2f}x CrystaLLM's algorithm here"
    )
    print("tokens per raw CIF (no special tokens):")
    lengths = list(map(len, ids_hf))
    print(length_stats("all", lengths))
    start = 0
    for name, rows in by_file.items():
        print(length_stats(name, lengths[start : start + len(rows)]))
        start += len(rows)
    print(length_stats("CrystaLLM's algorithm, all", list(map(len, ids_crystallm))))
    print(
        f"round trip exact: hfmat {exact}/{len(cifs)} ({100 * exact / len(cifs):.2f} %), "
        f"stand-in {exact_stand_in}/{len(cifs)}, CrystaLLM's algorithm {exact_crystallm}/{len(cifs)} "
        f"(it collapses whitespace; {with_unk} CIFs have an <unk>)"
    )
    print(f"same ids from hfmat, its backend and the stand-in: {same}/{len(cifs)}")
    if args.canonical:
        canonical_stats(tok, by_file, args.canonical)
    return 0 if exact == len(cifs) else 1


if __name__ == "__main__":
    sys.exit(main())

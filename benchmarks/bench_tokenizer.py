"""Tokenizer throughput and round trip on every CIF in the shared data.

hfmat's tokenizer (Rust ``tokenizers`` through transformers, batched) against a straightforward
pure-Python regex tokenizer over the same vocabulary, the approach of the original CrystaLLM code:
mark the space group after its tag, then one ``re`` alternation of every vocabulary token (longest
first) with ``findall``, and a dict lookup per token.

    .venv/bin/python benchmarks/bench_tokenizer.py [--data /work/shared/data] [--repeat 3]

Prints CIFs/s and tokens/s for both (wall clock, best of --repeat runs; also the Rust backend's
``encode_batch_fast`` alone, without the transformers wrapper), their ratio, tokens per
CIF (mean, max; overall and per file), the round-trip rate and whether both give the same ids.
Optionally (--canonical N) the same token statistics for the canonical form of the first N CIFs
of each file (hfmat.cif.structure_to_cif).
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

from hfmat.chemistry import space_group_symbols
from hfmat.tokenization import load_tokenizer
from hfmat.tokenization.vocab import SPECIAL_TOKENS, UNK, space_group_token, vocabulary

csv.field_size_limit(sys.maxsize)


class CrystaLLMStyleTokenizer:
    """Pure-Python baseline: the space group is found after its tag, everything else is cut by one
    alternation of all vocabulary strings (longest first, then any character) and looked up."""

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
    parser = argparse.ArgumentParser(description="hfmat tokenizer vs a pure-Python regex tokenizer")
    parser.add_argument("--data", default="/work/shared/data", type=Path)
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
    base = CrystaLLMStyleTokenizer()

    def run_hfmat():
        out = []
        for i in range(0, len(cifs), args.batch_size):
            out.extend(tok(cifs[i : i + args.batch_size], add_special_tokens=False)["input_ids"])
        return out

    def run_backend():
        return [e.ids for e in tok.backend_tokenizer.encode_batch_fast(cifs, add_special_tokens=False)]

    def run_baseline():
        return [base.encode(c) for c in cifs]

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
    t_base, ids_base = best_time(run_baseline, args.repeat)
    t_floor, ids_floor = best_time(run_floor, args.repeat)
    n_tok = sum(map(len, ids_hf))
    exact = sum(tok.decode(ids) == c for ids, c in zip(ids_hf, cifs))
    exact_base = sum(base.decode(ids) == c for ids, c in zip(ids_base, cifs))
    same = sum(a == b == c for a, b, c in zip(ids_hf, ids_base, ids_backend))

    print(
        f"{len(cifs)} CIFs from {args.data}; {os.cpu_count()} CPUs; "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}; best of {args.repeat}"
    )
    print(f"{'tokenizer':<28}{'CIFs/s':>10}{'tokens/s':>13}{'seconds':>10}")
    rows = (
        ("hfmat tokenizer, batched", t_hf),
        ("  its Rust backend alone", t_backend),
        ("python regex baseline", t_base),
    )
    for name, t in rows:
        print(f"{name:<28}{len(cifs) / t:>10.0f}{n_tok / t:>13.0f}{t:>10.3f}")
    print(f"speed-up hfmat / baseline: {t_base / t_hf:.2f}x (Rust backend alone: {t_base / t_backend:.2f}x)")
    floor_tok_s = sum(map(len, ids_floor)) / t_floor
    print(
        f"tokenizers' own cost: {floor_tok_s:.0f} tokens/s with a one-character split "
        f"({1e6 / floor_tok_s:.2f} us per token); at hfmat's {n_tok / len(cifs):.0f} tokens per CIF "
        f"that caps any `tokenizers` tokenizer at {floor_tok_s / n_tok * t_base:.2f}x the baseline here"
    )
    print("tokens per raw CIF (no special tokens):")
    lengths = list(map(len, ids_hf))
    print(length_stats("all", lengths))
    start = 0
    for name, rows in by_file.items():
        print(length_stats(name, lengths[start : start + len(rows)]))
        start += len(rows)
    print(
        f"round trip exact: hfmat {exact}/{len(cifs)} ({100 * exact / len(cifs):.2f} %), "
        f"baseline {exact_base}/{len(cifs)}"
    )
    print(f"same ids from all three: {same}/{len(cifs)}")
    if args.canonical:
        canonical_stats(tok, by_file, args.canonical)
    return 0 if exact == len(cifs) else 1


if __name__ == "__main__":
    sys.exit(main())

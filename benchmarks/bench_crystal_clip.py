"""Crystal CLIP benchmarks: how fast crystal descriptions are made, and retrieval of a trained model.

    # rows/s of the templated descriptions (a whole split) and of robocrystallographer (50 rows)
    OMP_NUM_THREADS=1 python benchmarks/bench_crystal_clip.py descriptions --dataset perov_5 --split test
    # the prose tokenizer next to a byte-level BPE trained on the same descriptions
    OMP_NUM_THREADS=1 python benchmarks/bench_crystal_clip.py tokenizers --dataset perov_5 --split val
    # text -> crystal and crystal -> text retrieval among 100 candidates on held-out pairs
    OMP_NUM_THREADS=1 python benchmarks/bench_crystal_clip.py retrieval \
        --model crystal-clip-perov5 --dataset perov_5 --split test
    # retrieval that composition matching cannot solve: candidates of one composition, and queries
    # that name only a crystal system or a space group (the CLIP card reads its retrieval.json)
    OMP_NUM_THREADS=1 python benchmarks/bench_crystal_clip.py retrieval-hard --model crystal-clip-perov5 \
        --out src/hfmat/checkpoints/crystal-clip-perov5/retrieval.json

``--data-dir`` defaults to ``../shared/data`` (from the repository root). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench_descriptions(args) -> dict:
    from hfmat.data import load_crystal_dataset
    from hfmat.data.descriptions import PROPERTY_PHRASES, describe_batch

    ds = load_crystal_dataset(args.dataset, data_dir=args.data_dir, splits=[args.split])[args.split]
    if args.limit:
        ds = ds.select(range(min(args.limit, len(ds))))
    properties = [p for p in PROPERTY_PHRASES if p in ds.column_names]
    batch = ds.to_dict()
    start = time.perf_counter()
    out = describe_batch(batch, symprec=0.1, properties=properties)
    seconds = time.perf_counter() - start
    report = {
        "dataset": args.dataset,
        "split": args.split,
        "template_rows": len(ds),
        "template_seconds": round(seconds, 2),
        "template_rows_per_s": round(len(ds) / seconds, 1),
        "template_failed": sum(1 for e in out["_error"] if e),
        "structure_types": {k: out["structure_type"].count(k) for k in set(out["structure_type"])},
        "example": {k: out[k][0] for k in ("text_composition", "text_system", "text_sentence")},
    }
    if args.robocrys_rows:
        from hfmat.data.descriptions import robocrys_batch

        sub = ds.select(range(min(args.robocrys_rows, len(ds)))).to_dict()
        start = time.perf_counter()
        robocrys_batch({"cif": sub["cif"][:1]})  # imports and first-call set-up, timed apart
        first = time.perf_counter() - start
        start = time.perf_counter()
        robo = robocrys_batch({"cif": sub["cif"]})
        seconds = time.perf_counter() - start
        report.update(
            robocrys_rows=len(sub["cif"]),
            robocrys_setup_seconds=round(first, 1),
            robocrys_seconds=round(seconds, 1),
            robocrys_rows_per_s=round(len(sub["cif"]) / seconds, 3),
            robocrys_failed=sum(1 for e in robo["_error"] if e),
            robocrys_example=robo["text_robocrys"][0],
            robocrys_hours_for_split=round(len(ds) / (len(sub["cif"]) / seconds) / 3600, 2),
        )
    return report


EXAMPLES = [
    "ZnO is a wide bandgap semiconductor",
    "SrTiO3 crystallizes in the cubic Pm-3m space group (No. 221) with the perovskite structure.",
    "TiO2 crystallizes in the tetragonal P4_2/mnm space group (No. 136)",
]


def bench_tokenizers(args) -> dict:
    """The prose tokenizer and a byte-level BPE of the same vocabulary size, both trained on the
    descriptions of one split: the seed examples tokenized by each, and tokens per text."""
    from hfmat.data import load_crystal_dataset
    from hfmat.data.descriptions import TEXT_COLUMNS, add_descriptions
    from hfmat.text.tokenizer import general_tokenizer, train_prose_tokenizer

    ds = load_crystal_dataset(args.dataset, data_dir=args.data_dir, splits=[args.split])[args.split]
    ds = add_descriptions(ds, num_proc=args.num_proc)
    texts = [t for column in TEXT_COLUMNS for t in ds[column]]
    ours = train_prose_tokenizer(texts, vocab_size=args.vocab_size)
    general = general_tokenizer(texts, vocab_size=len(ours))
    report = {"dataset": args.dataset, "split": args.split, "texts": len(texts), "vocab_size": len(ours)}
    for name, tok in (("prose", ours), ("byte_level_bpe", general)):
        report[name] = {
            "examples": [tok.tokenize(t) for t in EXAMPLES],
            "round_trip": all(
                tok.decode(tok(t, add_special_tokens=False)["input_ids"]) == t
                for t in [*EXAMPLES, *texts[:200]]
            ),
            **{
                f"mean_tokens_{c}": round(
                    sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in ds[c]) / len(ds), 2
                )
                for c in TEXT_COLUMNS
            },
        }
    return report


def bench_retrieval(args) -> dict:
    from hfmat.text.clip import CrystalCLIP, embed_pairs
    from hfmat.text.data import clip_dataset
    from hfmat.text.retrieval import retrieval_accuracy

    model = CrystalCLIP.from_pretrained(args.model)
    ds = clip_dataset(args.dataset, data_dir=args.data_dir, split=args.split, num_proc=args.num_proc)
    start = time.perf_counter()
    report = {"model": str(args.model), "dataset": args.dataset, "split": args.split, "pairs": len(ds)}
    for column in model.text_columns:
        text_emb, crystal_emb = embed_pairs(model, ds, column)
        report[column] = retrieval_accuracy(text_emb, crystal_emb, num_candidates=100, seed=args.seed)
        report[column]["distinct_texts"] = len(set(ds[column]))  # equal texts cannot be told apart
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def structure_sentence(row) -> str:
    """The sentence without its properties: composition, crystal system, space group and structure
    type only (what tells two structures of one composition apart, when anything does)."""
    sentence = (
        f"{row['text_composition']} crystallizes in the {row['crystal_system']} "
        f"{row['spacegroup_symbol']} space group (No. {row['spacegroup_number']})"
    )
    return sentence + (f" with the {row['structure_type']} structure." if row["structure_type"] else ".")


def formula_free_queries(row) -> dict[str, str]:
    """Texts that name no composition: the crystal system alone, the space group alone."""
    system = row["crystal_system"]
    return {
        "crystal_system": f"{'an' if system[0] in 'aeiou' else 'a'} {system} crystal",
        "space_group": f"a crystal in the {row['spacegroup_symbol']} space group (No. {row['spacegroup_number']})",
    }


def bench_retrieval_hard(args) -> dict:
    """Retrieval that composition matching cannot solve: (1) candidates that share one composition
    (every group of test crystals with one reduced formula), (2) queries that name no composition
    (the crystal system, or the space group, alone) among 100 random candidates, scored by whether
    the crystal ranked first has the named system / group."""
    from collections import defaultdict

    from hfmat.text.clip import CrystalCLIP, embed_pairs
    from hfmat.text.data import STRUCTURE_COLUMN, clip_dataset
    from hfmat.text.retrieval import attribute_retrieval, grouped_retrieval

    model = CrystalCLIP.from_pretrained(args.model)
    ds = clip_dataset(args.dataset, data_dir=args.data_dir, split=args.split, num_proc=args.num_proc)
    start = time.perf_counter()
    rows = ds.select_columns(
        ["text_composition", "crystal_system", "spacegroup_symbol", "spacegroup_number", "structure_type"]
    ).to_list()
    by_formula = defaultdict(list)
    for i, row in enumerate(rows):
        by_formula[row["text_composition"]].append(i)
    groups = [g for g in by_formula.values() if len(g) >= 2]
    _, crystals = embed_pairs(model, ds, model.text_columns[0])
    texts = {c: ds[c] for c in model.text_columns}
    texts["text_sentence_structure_only"] = [structure_sentence(r) for r in rows]
    texts.setdefault(
        STRUCTURE_COLUMN, ds[STRUCTURE_COLUMN]
    )  # no formula (a model may not have trained on it)
    same = {
        column: grouped_retrieval(model.embed_texts(said), crystals, groups, texts=said)
        for column, said in texts.items()
    }
    sizes = sorted({len(g) for g in groups})
    attribute = {}
    for name, label in (("crystal_system", "crystal_system"), ("space_group", "spacegroup_symbol")):
        queries = [formula_free_queries(r)[name] for r in rows]
        labels = [r[label] for r in rows]
        attribute[name] = attribute_retrieval(
            model.embed_texts(queries), labels, crystals, labels, num_candidates=100, seed=args.seed
        )
        attribute[name]["example"] = queries[0]
        attribute[name]["labels"] = len(set(labels))
    return {
        "model": str(args.model),
        "dataset": args.dataset,
        "split": args.split,
        "pairs": len(ds),
        "same_composition": {
            "groups": len(groups),
            "group_sizes": sizes,
            "crystals_in_groups": sum(len(g) for g in groups),
            **same,
        },
        "formula_free": attribute,
        "seconds": round(time.perf_counter() - start, 1),
        "command": (
            f"python benchmarks/bench_crystal_clip.py retrieval-hard --model {args.model} "
            f"--dataset {args.dataset} --split {args.split}"
        ),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["descriptions", "tokenizers", "retrieval", "retrieval-hard"])
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--limit", type=int, default=None, help="first N rows only (descriptions)")
    p.add_argument("--robocrys-rows", type=int, default=50, help="0: skip robocrys")
    p.add_argument("--model", default="crystal-clip-perov5", help="a folder, a shipped name or a Hub repo id")
    p.add_argument("--num-proc", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON report to this file")
    p.add_argument("--vocab-size", type=int, default=1000, help="learned WordPiece entries (tokenizers)")
    args = p.parse_args(argv)
    run = {
        "descriptions": bench_descriptions,
        "tokenizers": bench_tokenizers,
        "retrieval": bench_retrieval,
        "retrieval-hard": bench_retrieval_hard,
    }
    report = run[args.what](args)
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()

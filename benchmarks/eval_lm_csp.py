"""CSP evaluation of a CIF language model on a benchmark's test compositions.

    python benchmarks/eval_lm_csp.py --model checkpoints/cif-gpt2-perov5 --num-compositions 100 \
        --k 20 --unconstrained-k 1 --update-card

For the first N structures of ``<data-dir>/<dataset>/test.csv`` (file order, so the set is fixed;
or, with ``--shuffle-seed S``, of the split shuffled by ``datasets.Dataset.shuffle(seed=S)``: the
same seeded random subset as ``bench_diffusion.py --seed S`` scores), the prompt is the data_ line of the target's canonical CIF (its cell composition), ``k`` samples
are drawn per prompt, and ``hfmat.evaluation.csp_metrics`` computes the match rate and RMSE
(StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)) with all k samples and with the first one.
Validity is the fraction of samples whose ``hfmat.cif.validity.check_validity`` report passes
every check. With ``--unconstrained-k`` the same prompts and seeds are sampled again without the
grammar constraint, to measure what it changes. Prints a table and writes JSON (``--out``);
``--update-card`` also writes ``eval_metrics.json`` into the model folder and re-renders its
README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=False)
    p.add_argument("--dataset", default="perov_5")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--split", default="test")
    p.add_argument("--num-compositions", type=int, default=100)
    p.add_argument("--start", type=int, default=0, help="skip this many structures first (to split a run)")
    p.add_argument(
        "--shuffle-seed",
        type=int,
        default=None,
        help="take the structures in a seeded random order (datasets' shuffle, as bench_diffusion.py "
        "--seed does) instead of file order",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="instead of evaluating, combine the --out files of runs over consecutive slices",
    )
    p.add_argument("--k", type=int, default=20, help="samples per composition (k=1 uses the first)")
    p.add_argument(
        "--unconstrained-k", type=int, default=0, help="also sample this many without the constraint"
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (default: the model's generation_config.json, else 1.0)",
    )
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument(
        "--max-attempts",
        type=int,
        default=1,
        help="rejection sampling: redraw a sample that fails a validity check, up to this many draws "
        "(default 1: off); the runs report the first-draw validity beside the final one",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file for the metrics")
    p.add_argument("--update-card", action="store_true")
    return p.parse_args(argv)


def load_targets(path: Path, n: int, start: int = 0, shuffle_seed: int | None = None):
    """(material ids, structures, prompts, rows in the file) of structures ``start+1 .. start+n``
    in file order, or in the order of ``Dataset.shuffle(seed=shuffle_seed)`` when it is given."""
    from pymatgen.core import Structure

    from hfmat.cif import structure_to_cif

    if shuffle_seed is None:
        csv.field_size_limit(10**9)
        with open(path, newline="") as f:
            rows = [(row["material_id"], row["cif"]) for row in csv.DictReader(f)]
    else:
        from hfmat.data import load_crystal_dataset

        split = path.stem
        ds = load_crystal_dataset(path.parent.name, data_dir=path.parent.parent, splits=[split])[split]
        ds = ds.shuffle(seed=shuffle_seed)
        rows = list(zip(ds["material_id"], ds["cif"]))
    ids, structures, prompts = [], [], []
    for material_id, text in rows[start : start + n]:
        structure = Structure.from_str(text, fmt="cif")
        ids.append(material_id)
        structures.append(structure)
        prompts.append(structure_to_cif(structure).split("\n", 1)[0][len("data_") :])
    return ids, structures, prompts, len(rows)


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def run_one(model, tok, constraint, prompts, ids, refs, k, constrained, args):
    from hfmat.evaluation import csp_metrics
    from hfmat.lm import generate_cifs

    t0 = time.perf_counter()
    samples = generate_cifs(
        model,
        tok,
        compositions=prompts,
        num_samples=k,
        temperature=args.temperature,
        top_k=args.top_k,
        batch_size=args.batch_size,
        seed=args.seed,
        constrained=constrained,
        constraint=constraint,
        progress=True,
        max_attempts=args.max_attempts if constrained else 1,
    )
    gen_s = time.perf_counter() - t0
    preds: dict[str, list] = {mid: [] for mid in ids}
    valid = {1: 0, k: 0}
    first_draw = {1: 0, k: 0}  # valid at the first draw (rejection sampling off: the same as valid)
    on_prompt = {1: 0, k: 0}  # valid and of the prompt's composition
    fails: dict[str, int] = {}
    for i, s in enumerate(samples):
        mid = ids[i // k]
        preds[mid].append(s.structure if s.structure is not None else "no structure")
        if s.valid:
            valid[k] += 1
            first_draw[k] += s.valid_at_first_draw
            same = s.structure.composition.reduced_formula == _reduced(prompts[i // k])
            on_prompt[k] += same
            if s.index == 0 and k != 1:
                valid[1] += 1
                first_draw[1] += s.valid_at_first_draw
                on_prompt[1] += same
        for check in s.validity.failed():
            fails[check.name] = fails.get(check.name, 0) + 1
    metrics = csp_metrics(preds, dict(zip(ids, refs)), k=k, progress=False)
    runs = []
    for kk in sorted({1, k}):
        runs.append(
            {
                "k": kk,
                "constrained": constrained,
                "temperature": args.temperature,
                "num_compositions": len(ids),
                "validity_rate": valid[kk] / (len(ids) * kk),
                "max_attempts": args.max_attempts if constrained else 1,
                "validity_first_draw_rate": first_draw[kk] / (len(ids) * kk),
                "valid_prompt_composition_rate": on_prompt[kk] / (len(ids) * kk),
                "match_rate": metrics["match_rate_k1"] if kk == 1 else metrics["match_rate"],
                "rmse": metrics["rmse_k1"] if kk == 1 else metrics["rmse"],
                "num_matched": sum(
                    bool(t["matched_k1"] if kk == 1 else t["matched"]) for t in metrics["per_target"]
                ),
            }
        )
    firsts = samples[::k]
    per_target = [
        {"id": mid, "matched_k1": bool(t["matched_k1"]), "rms_k1": t.get("rms_k1"), "valid": f.valid}
        for mid, t, f in zip(ids, metrics["per_target"], firsts)
    ]
    info = {
        "per_target_k1": per_target,
        "draws": sum(s.attempts for s in samples),
        "samples": len(samples),
        "generation_s": gen_s,
        "samples_per_s": len(samples) / gen_s,
        "finished": sum(s.finished for s in samples),
        "failed_checks": fails,
    }
    return runs, info


def merge(paths: list[str]) -> dict:
    """Combine runs over slices: rates weighted by compositions (validity by samples), RMSE by matches."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    out = {key: parts[0][key] for key in ("model", "dataset_name", "dataset_type", "dataset_split")}
    out["command"] = " ; ".join(p["command"] for p in parts)

    def key_of(run):  # runs at other temperatures stay apart: slices of one run are merged
        return run["k"], run["constrained"], run.get("temperature")

    runs = []
    for key in dict.fromkeys(key_of(r) for p in parts for r in p["runs"]):
        same = [r for p in parts for r in p["runs"] if key_of(r) == key]
        n = sum(r["num_compositions"] for r in same)
        matched = sum(r["num_matched"] for r in same)
        rmse_sum = sum(r["rmse"] * r["num_matched"] for r in same if r["rmse"] is not None)
        runs.append(
            {
                "k": key[0],
                "constrained": key[1],
                **({"temperature": key[2]} if key[2] is not None else {}),
                "num_compositions": n,
                "validity_rate": sum(r["validity_rate"] * r["num_compositions"] for r in same) / n,
                **(
                    {
                        "valid_prompt_composition_rate": sum(
                            r["valid_prompt_composition_rate"] * r["num_compositions"] for r in same
                        )
                        / n
                    }
                    if all("valid_prompt_composition_rate" in r for r in same)
                    else {}
                ),
                "match_rate": matched / n,
                "rmse": rmse_sum / matched if matched else None,
                "num_matched": matched,
            }
        )
    out["runs"] = runs
    out["info"] = {f"part{i}": p["info"] for i, p in enumerate(parts)}
    first, last = parts[0]["description"], parts[-1]["description"]
    out["description"] = (
        f"{len(parts)} evaluations combined (slices of one run merged: rates weighted by compositions, RMSE "
        f"by matched targets; runs at other temperatures kept apart). First: {first} Last: {last}"
    )
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.merge:
        out = merge(args.merge)
        _report(out, args)
        return out
    if not args.model:
        raise SystemExit("--model is required unless --merge is given")
    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.lm import CifConstraint
    from hfmat.lm.generation import model_temperature

    model = AutoModelForCausalLM.from_pretrained(args.model)
    tok = AutoTokenizer.from_pretrained(args.model)
    if args.temperature is None:
        args.temperature = model_temperature(model)
    path = Path(args.data_dir) / args.dataset / f"{args.split}.csv"
    ids, refs, prompts, total = load_targets(path, args.num_compositions, args.start, args.shuffle_seed)
    constraint = CifConstraint(tok)
    out = {
        "model": str(args.model),
        "dataset_name": {"perov_5": "Perov-5", "mp_20": "MP-20", "carbon_24": "Carbon-24"}.get(
            args.dataset, args.dataset
        ),
        "dataset_type": args.dataset,
        "dataset_split": args.split,
        "command": "python benchmarks/eval_lm_csp.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "runs": [],
        "info": {},
    }
    runs, info = run_one(model, tok, constraint, prompts, ids, refs, args.k, True, args)
    out["runs"] += runs
    out["info"]["constrained"] = info
    if args.unconstrained_k:
        runs, info = run_one(model, tok, constraint, prompts, ids, refs, args.unconstrained_k, False, args)
        out["runs"] += runs
        out["info"]["unconstrained"] = info
    n = len(ids)
    out["description"] = (
        f"CSP on structures {args.start + 1}-{args.start + n} of the {total} of "
        f"{args.dataset}/{args.split}.csv ("
        + (
            "file order"
            if args.shuffle_seed is None
            else f"a seeded random order: datasets' shuffle, seed {args.shuffle_seed}"
        )
        + "), prompted with each target's cell composition, "
        f"{args.k} samples per composition (temperature {args.temperature}, top-k {args.top_k}, seed "
        f"{args.seed}); k=1 uses the first sample. Match: StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3). "
        "Validity: every check of hfmat.cif.validity.check_validity passes. "
        f"Command: `{out['command']}`."
    )
    _report(out, args)
    return out


def _report(out: dict, args) -> None:
    print(
        f"{'constrained':12s} {'k':>3s} {'comps':>6s} {'valid %':>8s} {'on-prompt %':>11s} {'match %':>8s} {'RMSE':>8s}"
    )
    for r in out["runs"]:
        rmse = "n/a" if r["rmse"] is None else f"{r['rmse']:.4f}"
        onp = r.get("valid_prompt_composition_rate")
        onp = "n/a" if onp is None else f"{onp * 100:.2f}"
        print(
            f"{str(r['constrained']):12s} {r['k']:3d} {r['num_compositions']:6d} {r['validity_rate'] * 100:8.2f} "
            f"{onp:>11s} {r['match_rate'] * 100:8.2f} {rmse:>8s}"
            + (
                f"  (rejection sampling, up to {r['max_attempts']} draws: "
                f"{r['validity_first_draw_rate'] * 100:.2f} % valid at the first)"
                if r.get("max_attempts", 1) > 1
                else ""
            )
        )
    for name, info in out["info"].items():
        if "samples" not in info:
            continue
        print(
            f"{name}: {info['samples']} samples in {info['generation_s']:.0f}s ({info['samples_per_s']:.2f}/s), "
            f"{info['finished']} ended with <eos>; failed checks: {info['failed_checks']}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    if args.update_card:
        from hfmat.lm.card import write_model_card

        model = args.model or out["model"]
        (Path(model) / "eval_metrics.json").write_text(json.dumps(out, indent=1) + "\n")
        print("card:", write_model_card(model))


if __name__ == "__main__":
    main()

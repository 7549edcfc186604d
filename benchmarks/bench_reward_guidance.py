"""Reward-guided generation on perov-5 test compositions: plain sampling, MCTS at a few budgets and
an RL fine-tuned model, one structure per composition each (docs/reward_guidance.md).

For each method, on the first ``--n`` compositions of the split (each prompted as its cell
composition, as ``hfmat generate --reference`` does):

- validity (``check_validity`` strict, every check);
- the valid structures relaxed with CHGNet (``hfmat.physics.relax``, fmax 0.1 eV/Å, ``--relax-steps``):
  mean energy per atom and mean energy above the potential's hull over the first ``--hull-limit``
  rows of perov-5 val plus elemental ground states (``hfmat.physics.hull``; cached, and a hull of
  CHGNet's energies, not the Materials Project's), the fraction of *all* compositions whose sample
  is valid and (meta)stable (E_hull <= 0 / <= 0.1 eV/atom);
- paired: the mean E_hull difference to plain sampling over the compositions where both are valid;
- CSP match rate and RMSE against the DFT targets, k = 1 (``hfmat.evaluation.csp_metrics``);
- wall seconds per structure of the generation (MCTS: search and reward relaxations included).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_reward_guidance.py --n 20 --budgets 8,32 \\
        --rl-model runs/cif_lm_rl_perov5/final --out runs/bench_reward_guidance.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="compositions: the split's first N rows (default 100)")
    p.add_argument("--data-dir", default="../shared/data/perov_5", help="folder of the perov-5 CSVs")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--model", default="cif-gpt2-perov5", help="the LM for sampling and MCTS (default: shipped)"
    )
    p.add_argument(
        "--rl-model", default=None, help="an RL fine-tuned LM folder (train_cif_lm_rl.py) to compare"
    )
    p.add_argument("--budgets", default="8,32", help="MCTS simulations per composition, comma-separated")
    p.add_argument("--reward", default="validity=1,composition=1,energy=0.5", help="the MCTS reward")
    p.add_argument("--reward-steps", type=int, default=50, help="FIRE steps of the reward's relaxation")
    p.add_argument("--rollout-batch", type=int, default=8)
    p.add_argument("--relax-steps", type=int, default=200, help="FIRE steps of the evaluation relaxation")
    p.add_argument("--hull-limit", type=int, default=300, help="perov-5 val rows in the reference hull")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument(
        "--card",
        action="store_true",
        help="with --rl-model FOLDER: save the results in FOLDER (reward_guidance.json) and rewrite its model card",
    )
    args = p.parse_args(argv)
    if args.card and not args.rl_model:
        p.error("--card needs --rl-model FOLDER")
    return args


def targets(data_dir: str, split: str, n: int):
    from hfmat.cif import cif_to_structure
    from hfmat.evaluation.io import load_reference

    ids, cifs = load_reference(f"perov_5:{split}", data_dir=data_dir, default_split=split)
    return ids[:n], [cif_to_structure(c) for c in cifs[:n]]


def build_hull(data_dir: str, limit: int):
    """CHGNet's hull over the first ``limit`` perov-5 val rows plus the ground states of every element
    of perov-5 val (the same for any --n, so the cached hull is reused)."""
    from hfmat.physics.hull import load_structures, reference_hull

    every = load_structures("perov_5:val", data_dir, None)
    elements = sorted({el.symbol for s in every for el in s.composition.elements})
    return reference_hull(every[:limit], "chgnet", extra_elements=elements, progress=False)


def run_method(name, model, tok, comps, constraint, seed, **kwargs):
    from hfmat.lm import generate_cifs

    start = time.perf_counter()
    samples = generate_cifs(
        model, tok, compositions=comps, num_samples=1, seed=seed, constraint=constraint, **kwargs
    )
    wall = time.perf_counter() - start
    print(
        f"{name}: {sum(s.valid for s in samples)}/{len(samples)} valid, {wall / len(samples):.2f} s/structure"
    )
    return samples, wall


def score(name, samples, wall, refs, hull, relax_steps, baseline=None):
    """The method's row (and its per-composition E_hull list, None where not valid or not placed)."""
    from hfmat.evaluation import csp_metrics
    from hfmat.physics import relax

    n = len(samples)
    valid = [i for i, s in enumerate(samples) if s.valid]
    results = relax(
        [samples[i].structure for i in valid], "chgnet", fmax=0.1, steps=relax_steps, progress=False
    )
    e_hull: list[float | None] = [None] * n
    energy: list[float | None] = [None] * n
    for i, r in zip(valid, results):
        if r.ok:
            energy[i] = r.energy_final
            try:
                e_hull[i] = hull.e_above_hull(r.structure.composition, r.energy_final)
            except ValueError:
                pass
    placed = [e for e in e_hull if e is not None]
    energies = [e for e in energy if e is not None]
    csp = csp_metrics(
        [[s.structure if s.valid else "invalid"] for s in samples], refs, k=1, progress=False, workers=1
    )
    row = {
        "method": name,
        "n": n,
        "validity": len(valid) / n,
        "relaxed": len(energies),
        "mean_energy_per_atom": sum(energies) / len(energies) if energies else None,
        "mean_e_hull": sum(placed) / len(placed) if placed else None,
        "stable_rate": sum(e <= 0.0 for e in placed) / n,
        "metastable_rate": sum(e <= 0.1 for e in placed) / n,
        "match_rate": csp["match_rate"],
        "rmse": csp["rmse"],
        "wall_s_per_structure": wall / n,
    }
    if baseline is not None:
        pairs = [(a, b) for a, b in zip(e_hull, baseline) if a is not None and b is not None]
        row["paired_n"] = len(pairs)
        row["paired_e_hull_delta"] = sum(a - b for a, b in pairs) / len(pairs) if pairs else None
    searches = [s.search for s in samples if s.search]
    if searches:
        row["mean_unique_completions"] = sum(s["unique_completions"] for s in searches) / len(searches)
        row["mean_best_found_at"] = sum(s["best_found_at"] for s in searches) / len(searches)
    return row, e_hull


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import torch

    from hfmat.lm.card import REWARD_EVAL, write_model_card

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load, resolve
    from hfmat.lm import CifConstraint
    from hfmat.lm.generation import model_temperature
    from hfmat.lm.rewards import CifReward
    from hfmat.physics import load_potential

    ids, refs = targets(args.data_dir, args.split, args.n)
    comps = [r.composition for r in refs]
    hull = build_hull(args.data_dir, args.hull_limit)
    folder = resolve(args.model)
    model, tok = load(AutoModelForCausalLM, folder), load(AutoTokenizer, folder)
    constraint = CifConstraint(tok)
    pot = load_potential("chgnet")
    rows = []
    sample, wall = run_method("sample", model, tok, comps, constraint, args.seed)
    row, base = score("sample", sample, wall, refs, hull, args.relax_steps)
    rows.append(row | {"temperature": model_temperature(model)})  # each model samples at its own
    for budget in [int(b) for b in args.budgets.split(",") if b]:
        reward = CifReward(args.reward, potential=pot, steps=args.reward_steps)  # a fresh cache per budget
        name = f"mcts@{budget}"
        samples, wall = run_method(
            name,
            model,
            tok,
            comps,
            constraint,
            args.seed,
            search="mcts",
            reward=reward,
            simulations=budget,
            search_options={"rollout_batch": min(args.rollout_batch, budget)},
        )
        row, _ = score(name, samples, wall, refs, hull, args.relax_steps, base)
        row["reward"] = reward.describe()
        row["reward_relaxations"] = reward.stats["relaxed"]
        rows.append(row | {"temperature": model_temperature(model)})
    if args.rl_model:
        rl_model, rl_tok = load(AutoModelForCausalLM, args.rl_model), load(AutoTokenizer, args.rl_model)
        samples, wall = run_method("rl", rl_model, rl_tok, comps, CifConstraint(rl_tok), args.seed)
        row, _ = score("rl", samples, wall, refs, hull, args.relax_steps, base)
        row["model"] = os.path.basename(os.path.normpath(args.rl_model))
        rows.append(row | {"temperature": model_temperature(rl_model)})
    print_table(rows)
    if args.out or args.card:
        record = {
            "args": vars(args),
            "hull": {"note": hull.note, "num_reference": hull.num_reference, "potential": hull.potential},
            "load_average": os.getloadavg(),
            "rows": rows,
        }
        for out in [args.out] + ([Path(args.rl_model) / REWARD_EVAL] if args.card else []):
            if out:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                Path(out).write_text(json.dumps(record, indent=1))
                print(f"wrote {out}")
        if args.card:
            print(f"wrote {write_model_card(args.rl_model)}")
    return rows


def print_table(rows):
    from hfmat.lm.card import reward_table

    print(reward_table(rows))


if __name__ == "__main__":
    main()

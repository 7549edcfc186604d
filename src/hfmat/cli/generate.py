"""``hfmat generate``: sample crystals from a CIF language model (a folder, a Hub repo id or the
shipped model's name), check each one and write it as a structure file.

Prompts: ``--composition`` (repeatable), ``--reference DATASET:SPLIT --limit N`` (the cell
compositions of its first N rows; predictions.jsonl then pairs with ``hfmat evaluate --task csp``),
or neither (unconditional samples)."""

from __future__ import annotations

from hfmat import shipped
from hfmat.cli import options
from hfmat.cli.relax_option import add_relax_option, relax_potential, relax_written

EXAMPLES = """\
hfmat generate --composition SrTiO3 -n 8 --out lm-srtio3
hfmat generate --composition BaTiO3 --spacegroup Pm-3m --format poscar --out lm-batio3
hfmat generate --reference perov_5:test --limit 20 -n 20 --out runs/lm_csp
hfmat generate --composition SrTiO3 -n 4 --search mcts --simulations 64 --reward validity=1,energy=0.1 --out lm-mcts
hfmat evaluate --task csp --predictions runs/lm_csp/predictions.jsonl --reference perov_5:test --out runs/eval_lm"""

#: library argument -> CLI flag, for error messages
FLAGS = {
    "compositions": "--composition",
    "num_samples": "-n",
    "batch_size": "--batch-size",
    "max_new_tokens": "--max-new-tokens",
    "spacegroup": "--spacegroup",
    "max_attempts": "--max-attempts",
}


def register(sub) -> None:
    p = options.add_parser(
        sub,
        "generate",
        help="sample crystals from a CIF language model",
        description=__doc__,
        examples=EXAMPLES,
    )
    options.add_model_options(
        p,
        default_model=f"default: the shipped {shipped.LM}",
        batch_default=32,
        batch_help="samples generated together (default 32)",
    )
    p.add_argument("--tokenizer", default=None, help="tokenizer folder or repo id (default: the model's)")
    p.add_argument(
        "--composition",
        action="append",
        default=None,
        help="cell composition to prompt with, e.g. SrTiO3 or Sr1Ti1O3 (repeatable)",
    )
    options.add_reference_options(p)
    p.add_argument(
        "--formula-units",
        type=int,
        default=None,
        help="formula units Z per cell (multiplies the reduced formula)",
    )
    p.add_argument(
        "--spacegroup", default=None, help="space-group symbol (Pm-3m) or number (221) to prompt with"
    )
    p.add_argument("-n", "--num-samples", type=int, default=8, help="samples per prompt (default 8)")
    options.add_output_options(p, out_required=True)
    add_relax_option(p)
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature; 0: greedy (default: the model's generation_config.json, else 1.0)",
    )
    p.add_argument("--top-k", type=int, default=10, help="sample among the k likeliest tokens (default 10)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="cut each sample after this many tokens (default: context)",
    )
    p.add_argument("--unconstrained", action="store_true", help="turn grammar-constrained decoding off")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=1,
        help="rejection sampling: draw a sample that fails a validity check again, up to this many "
        "draws in all (default 1: off); summary.json records each sample's draw and the first-draw validity",
    )
    p.add_argument(
        "--search",
        choices=("sample", "mcts"),
        default="sample",
        help="sample: plain sampling (default); mcts: Monte Carlo tree search towards --reward, "
        "keeping each prompt's -n best texts (docs/reward_guidance.md)",
    )
    p.add_argument(
        "--simulations", type=int, default=32, help="--search mcts: rollouts per prompt (default 32)"
    )
    p.add_argument(
        "--reward",
        default="validity=1",
        help="--search mcts: weighted reward terms, e.g. validity=1,composition=1,spacegroup=1,energy=0.1 "
        "(energy: minus CHGNet's energy per atom after a short relaxation; needs hfmat[physics]) "
        "(default validity=1)",
    )
    p.add_argument(
        "--reward-potential",
        default="chgnet",
        choices=("chgnet", "sevennet"),
        help="--search mcts: the potential of the energy term (default chgnet)",
    )
    p.add_argument(
        "--c-puct", type=float, default=1.0, help="--search mcts: exploration constant (default 1.0)"
    )
    p.add_argument(
        "--rollout-batch", type=int, default=8, help="--search mcts: rollouts sampled together (default 8)"
    )
    p.set_defaults(func=run)


def _prompts(args) -> tuple[list[str] | None, list[str | None]]:
    """(compositions to prompt with, the reference material_id of each), checked before loading."""
    from hfmat.cli.reference import prompts_from_args
    from hfmat.lm.prompts import PromptError, composition_prompt

    comps, ids = prompts_from_args(args)
    for comp in comps or []:
        composition_prompt(comp, args.spacegroup, args.formula_units)
    if comps is None and args.spacegroup is not None:
        raise PromptError("--spacegroup needs --composition (the space-group line follows the data_ line)")
    return comps, ids


def _reward(args):
    """The reward of ``--search mcts`` (None for plain sampling), checked before the model loads;
    a physics term loads its potential now, so a missing extra fails at once."""
    from hfmat.lm.rewards import CifReward, RewardError

    if args.search != "mcts":
        return None
    if not args.c_puct >= 0:
        raise ValueError(f"--c-puct must be a non-negative number, got {args.c_puct}")
    try:
        reward = CifReward(args.reward, potential=args.reward_potential)
    except RewardError as err:
        raise ValueError(f"--reward {args.reward}: {err}") from None
    if reward.needs_physics:
        from hfmat.extras import MissingExtraError

        try:
            from hfmat.physics import load_potential

            reward.potential = load_potential(args.reward_potential)
        except MissingExtraError as err:
            raise ValueError(f"--reward {args.reward}: {err}") from None
    return reward


def run(args) -> int:
    from pathlib import Path

    from hfmat.cli.outputs import RunWriter, check_out
    from hfmat.cli.scope import warn_out_of_scope
    from hfmat.lm.prompts import PromptError

    options.check_counts(
        args,
        "-n",
        "--batch-size",
        "--limit",
        "--threads",
        "--max-new-tokens",
        "--simulations",
        "--rollout-batch",
    )
    comps, ids = _prompts(args)
    reward = _reward(args)
    device = options.torch_device(args.device)
    out = Path(args.out)
    replace = check_out(out, "generate", args.overwrite)
    potential = relax_potential(args.relax)
    options.set_threads(args.threads)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load, resolve
    from hfmat.lm.generation import generate_cifs, model_temperature

    model_name = args.model or shipped.LM
    folder = resolve(model_name)
    if comps and not args.reference:
        warn_out_of_scope("generate", folder, comps)
    model = load(AutoModelForCausalLM, folder).to(device)
    tokenizer = load(AutoTokenizer, args.tokenizer or folder)
    try:
        samples = generate_cifs(
            model,
            tokenizer,
            compositions=comps,
            spacegroup=args.spacegroup,
            num_samples=args.num_samples,
            temperature=args.temperature,
            top_k=args.top_k,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            seed=args.seed,
            constrained=not args.unconstrained,
            formula_units=args.formula_units,
            progress=True,
            search=args.search,
            reward=reward,
            simulations=args.simulations,
            search_options={"c_puct": args.c_puct, "rollout_batch": args.rollout_batch},
            max_attempts=args.max_attempts,
        )
    except PromptError as err:
        raise ValueError(options.reword(str(err), FLAGS)) from None
    writer = RunWriter.for_run(args, "generate", model_name, out, replace)
    writer.meta["temperature"] = model_temperature(model) if args.temperature is None else args.temperature
    if args.max_attempts > 1:
        writer.meta["rejection_sampling"] = {
            "max_attempts": args.max_attempts,
            "valid_first_draw": sum(s.valid_at_first_draw for s in samples),
            "valid": sum(s.valid for s in samples),
            "draws": sum(s.attempts for s in samples),
        }
    if reward is not None:
        writer.meta["search"] = {
            "method": "mcts",
            "reward": reward.describe(),
            "simulations": args.simulations,
            "c_puct": args.c_puct,
            "rollout_batch": args.rollout_batch,
            "reward_stats": reward.stats,
        }
    width = max(len(s.composition or "unconditional") for s in samples)
    writer.table(f"{'#':>4}  {'prompt':{width}s}  {'file':28s}  {'valid':5s}  why")
    for i, s in enumerate(samples):
        label = s.composition or "unconditional"
        failed = s.validity.failed()
        why = "; ".join(f"{c.name}: {c.reason}" for c in failed) if failed else "all checks passed"
        if not s.finished:
            why = "cut at max_new_tokens; " + why
        entry = {
            "prompt": s.prompt,
            "material_id": ids[i // args.num_samples] if comps else None,
            "sample": s.index,
            "valid": s.valid,
            "finished": s.finished,
            "formula": s.structure.composition.reduced_formula if s.structure is not None else None,
            "failed_checks": {c.name: c.reason for c in failed},
            "attempts": s.attempts,
        }
        if s.search is not None:
            entry |= {"reward": s.reward, "search": s.search}
        name = writer.add(f"{i:04d}_{label}", s.structure, entry, raw_text=s.text)
        writer.table(f"{i:4d}  {label:{width}s}  {name:28s}  {'yes' if s.valid else 'no':5s}  {why}")
    if potential is not None:
        relax_written(writer, potential)
    writer.finish()
    n_valid = sum(s.valid for s in samples)
    if args.max_attempts > 1:
        first = writer.meta["rejection_sampling"]["valid_first_draw"]
        print(
            f"rejection sampling: {first}/{len(samples)} valid at the first draw, {n_valid} after up to {args.max_attempts}"
        )
    print(f"{n_valid}/{len(samples)} valid; files, summary.json and predictions.jsonl written to {out}")
    return 0

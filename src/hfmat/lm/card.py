"""The model card of a CIF language model (template ``model_cards/cif_lm.md``).

The training script writes ``training_summary.json`` (config and measured training figures)
into the model folder; an evaluation writes ``eval_metrics.json``. :func:`write_model_card`
renders README.md from whatever of the two is there, so the card only ever shows measured numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["reward_table", "write_model_card"]

#: benchmarks/bench_reward_guidance.py --card writes its results into an RL model folder under this name
REWARD_EVAL = "reward_guidance.json"


def _fmt(x, digits=4):
    return "n/a" if x is None else f"{x:.{digits}f}"


def _training_text(record: dict, repo_id: str) -> str:
    from hfmat.hub.provenance import data_sentence, origin_sentence

    config, s = record["config"], record["summary"]
    data = f"Data: {data_sentence(record)}. " + (config.get("dataset_note") or "")
    origin = origin_sentence(record, repo_id)
    lines = [
        data.rstrip() + (f" {origin}" if origin else ""),
        "",
        f"Recipe: `training/train_cif_lm.py` (Accelerate), AdamW (lr {config.get('lr')}, weight decay "
        f"{config.get('weight_decay')}, betas {config.get('betas')}), {config.get('warmup_steps')} warm-up steps "
        f"then cosine decay, batch {config.get('per_device_batch_size')} x {s.get('num_processes', 1)} process(es) x "
        f"{config.get('gradient_accumulation_steps')} accumulation, gradient clipping {config.get('max_grad_norm')}, "
        f"dropout {config.get('dropout')}, mixed precision `{config.get('mixed_precision')}`, seed {config.get('seed')}.",
        "",
        "| measured | value |",
        "|---|---|",
        f"| optimizer steps | {s.get('step')} of {s.get('total_steps')} |",
        f"| epochs | {_fmt(s.get('epochs'), 2)} |",
        f"| training tokens | {s.get('tokens'):,} |",
        f"| final training loss (nats/token) | {_fmt(s.get('train_loss'))} |",
        f"| eval loss (nats/token) | {_fmt(s.get('eval_loss'))} |",
        f"| wall time | {s.get('wall_s', 0) / 60:.1f} min |",
        f"| throughput | {s.get('tokens_per_s', 0):,.0f} tokens/s |",
    ]
    if s.get("hardware"):
        lines.append(f"| hardware | {s['hardware']} |")
    return "\n".join(lines)


def _rl_training_text(record: dict, start: str) -> str:
    """The training section of a model fine-tuned with GRPO (``training/train_cif_lm_rl.py``) from
    ``start``."""
    cfg, s = record["config"], record["summary"]
    physics = ""
    if "energy" in cfg["reward"] or "e_hull" in cfg["reward"]:
        physics = f"; energies from {cfg['potential']} after at most {cfg['reward_steps']} FIRE steps"
    earlier = [st for st in record.get("previous") or [] if st.get("method") == "grpo"]
    stages = f", the last of {len(earlier) + 1} GRPO stages; this one:" if earlier else ":"
    probe = s.get("hard_prompt_probe")
    if probe:
        hard = (
            f"whose own structure fails a validity check ({1 - probe['target_validity']:.1%} of them)"
            if probe.get("from") == "targets"
            else "where a probe sample of the starting model failed a validity check "
            f"(its validity {probe['probe_validity']:.1%})"
        )
        prompts = (
            f"the cell compositions of {s['prompts']} of the first {probe['probed']} rows of "
            f"`{cfg['dataset']}` {cfg['split']}: the {probe['hard']} {hard} and "
            f"{probe['passing_kept']} of the others"
        )
    else:
        prompts = (
            f"the cell compositions of the first {s['prompts']} rows of `{cfg['dataset']}` {cfg['split']}"
        )
    return "\n".join(
        [
            f"Reinforcement learning from `{start}` with trl's GRPO (`training/train_cif_lm_rl.py`){stages} "
            f"prompts are {prompts}; "
            f"{cfg['num_generations']} completions per prompt from hfmat's grammar-constrained sampler "
            f"(temperature {cfg['temperature']}, top-k {cfg['top_k']}); reward `{cfg['reward']}` "
            f"(`hfmat.lm.rewards.CifReward`{physics}); KL penalty beta {cfg['beta']} to {_kl_reference(cfg)}, "
            f"{_sft_term(cfg, s)}lr {cfg['lr']}, clip epsilon {cfg['epsilon']}, seed {cfg['seed']}. "
            f"{_supervised_stages_between(record, start)}{_earlier_rl_stages(record)}".rstrip(),
            "",
            "| measured | value |",
            "|---|---|",
            f"| optimizer steps | {s['step']} of {s['total_steps']} |",
            f"| completions scored | {s['completions_scored']} |",
            f"| mean reward, first / last quarter of the run | {_fmt(s['reward_first_quarter'], 3)} / "
            f"{_fmt(s['reward_last_quarter'], 3)} |",
            f"| validity of the samples, first / last quarter | {_fmt(s['validity_first_quarter'], 3)} / "
            f"{_fmt(s['validity_last_quarter'], 3)} |",
            f"| mean energy per atom (eV), first / last quarter | {_fmt(s['energy_first_quarter'], 3)} / "
            f"{_fmt(s['energy_last_quarter'], 3)} |",
            f"| KL to the reference, first / last logged step | {_fmt(s.get('kl_first'), 5)} / {_fmt(s['kl_last'], 5)} |",
            *(
                [
                    f"| supervised loss on the split's CIFs, first / last logged step | {_fmt(s['sft_loss_first'])} / {_fmt(s['sft_loss_last'])} |"
                ]
                if s.get("sft_rows")
                else []
            ),
            f"| wall time | {s['wall_s'] / 60:.1f} min |",
            f"| hardware | {s['hardware']} |",
        ]
    )


def _sft_term(cfg: dict, summary: dict) -> str:
    """The supervised term beside GRPO's loss (``sft_weight``), or nothing for a run without one."""
    if not cfg.get("sft_weight"):
        return ""
    return (
        f"plus {cfg['sft_weight']} times the causal-LM loss on {cfg['sft_batch_size']} of the split's "
        f"{summary.get('sft_rows')} CIFs per step (InstructGPT's PPO-ptx), "
    )


def _kl_reference(cfg: dict) -> str:
    ref = cfg.get("ref_model")
    return f"`{ref}` (not the starting model)" if ref else "the starting model"


def _supervised_stages_between(record: dict, start: str) -> str:
    """A sentence on the supervised stages (``training/train_cif_lm.py``, e.g. rejection-sampling
    fine-tuning) run between ``start`` and the first GRPO stage; nothing when there are none."""
    previous = record.get("previous") or []
    from_start = [i for i, st in enumerate(previous) if st.get("base_model") == start]
    if not from_start:
        return ""
    n = sum(1 for st in previous[from_start[-1] :] if st.get("method") != "grpo")
    if not n:
        return ""
    return (
        f"Before the first GRPO stage, {n} supervised fine-tuning stage{'s' if n > 1 else ''} "
        f"(`training/train_cif_lm.py`) continued from `{start}`; `training_summary.json` records each. "
    )


def _earlier_rl_stages(record: dict) -> str:
    """A sentence per earlier GRPO stage of ``record`` (a run continued from an RL folder)."""
    out = []
    stages = [st for st in record.get("previous") or [] if st.get("method") == "grpo"]
    for number, stage in enumerate(stages, 1):
        cfg, s = stage["config"], stage["summary"]
        out.append(
            f"Stage {number}: {s['step']} steps, reward `{cfg['reward']}`, lr {cfg['lr']}, seed {cfg['seed']}, "
            f"{s['wall_s'] / 60:.1f} min (validity of its samples {_fmt(s['validity_first_quarter'], 3)} -> "
            f"{_fmt(s['validity_last_quarter'], 3)})."
        )
    return ("Earlier stages, oldest first: " + " ".join(out)) if out else ""


def reward_table(rows: list[dict]) -> str:
    """The markdown table of ``benchmarks/bench_reward_guidance.py`` rows (one per method)."""

    def f(x, d=3, pct=False):
        if x is None:
            return "n/a"
        return f"{x * 100:.0f} %" if pct else f"{x:.{d}f}"

    lines = [
        "| method | validity | mean E/atom (eV) | mean E_hull (eV/atom) | paired ΔE_hull vs sample | stable | "
        "metastable | match k=1 | RMSE | s/structure |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paired = "" if "paired_n" not in r else f"{f(r['paired_e_hull_delta'])} (n={r['paired_n']})"
        method = r["method"] + (f" (T {r['temperature']:g})" if r.get("temperature") is not None else "")
        lines.append(
            f"| {method} | {f(r['validity'], pct=True)} | {f(r['mean_energy_per_atom'])} | "
            f"{f(r['mean_e_hull'])} | {paired} | {f(r['stable_rate'], pct=True)} | "
            f"{f(r['metastable_rate'], pct=True)} | {f(r['match_rate'], pct=True)} | {f(r['rmse'])} | "
            f"{r['wall_s_per_structure']:.1f} |"
        )
    return "\n".join(lines)


def _reward_results(bench: dict) -> tuple[str, str]:
    """(evaluation text, table) from a bench_reward_guidance.py result saved in the model folder."""
    a = bench["args"]
    text = (
        f"Reward-guided CSP on the first {a['n']} `perov_5` {a.get('split', 'test')} compositions, one structure "
        f"each (k=1): `{a['model']}` sampled plainly (`sample`) and with MCTS (`mcts@N`, if run) against this "
        f"model (`rl`), all with constrained decoding at each model's own temperature (T, where recorded), "
        f"every valid sample relaxed with "
        f"{bench['hull']['potential']} (at most {a['relax_steps']} steps) and placed on the potential's hull of {bench['hull']['num_reference']} reference "
        f"structures ({bench['hull']['note']}). Command: `python benchmarks/bench_reward_guidance.py "
        f"--n {a['n']} --budgets '{a['budgets']}' --rl-model FOLDER --threads {a['threads']} --card`."
    )
    return text, reward_table(bench["rows"])


def example_composition(record: dict) -> str:
    """The composition the card's snippets prompt with: the config's ``card_example``, else one the
    model was trained on (``C8`` for a carbon-only model), else SrTiO3."""
    config, data = record["config"], record.get("data") or {}
    if config.get("card_example"):
        return config["card_example"]
    elements, sizes = data.get("elements") or [], data.get("num_atoms") or []
    if len(elements) == 1 and sizes:
        return f"{elements[0]}{8 if 8 in sizes else min(sizes)}"
    return "SrTiO3"


def _results(metrics: dict) -> tuple[str, str]:
    """(evaluation text, results table) from an eval_metrics.json dict."""
    from hfmat.data.catalog import BENCHMARKS
    from hfmat.evaluation import PUBLISHED_CSP
    from hfmat.evaluation.reference import canonical_dataset

    text = metrics.get("description", "")
    rows = [
        "| model | samples/composition | compositions | validity % | match rate % | RMSE |",
        "|---|---|---|---|---|---|",
    ]
    for run in metrics.get("runs", []):
        how = "constrained" if run.get("constrained") else "unconstrained"
        if run.get("temperature") is not None:
            how += f", T {run['temperature']:g}"
        if run.get("max_attempts", 1) > 1:  # the raw rate beside the rejection-sampled one
            how += (
                f", rejection sampling: up to {run['max_attempts']} draws; "
                f"{run['validity_first_draw_rate'] * 100:.2f} % valid at the first draw"
            )
        rows.append(
            f"| this model ({how}) | {run['k']} | "
            f"{run['num_compositions']} | {run['validity_rate'] * 100:.2f} | {run['match_rate'] * 100:.2f} | "
            f"{_fmt(run.get('rmse'))} |"
        )
    dataset = metrics.get("dataset_type", "")
    benchmark = canonical_dataset(dataset)  # mp_20_subset -> mp_20: the published rows of its benchmark
    published = PUBLISHED_CSP.get(benchmark or "", {})
    for k in sorted(published):
        for name, (rate, rmse) in published[k].items():
            rows.append(f"| {name} (published, full test split) | {k} | all | | {rate:.2f} | {rmse:.4f} |")
    if published and not any("CrystaLLM" in name for k in published for name in published[k]):
        text += (
            "\n\nCrystaLLM's own numbers on this benchmark are in its paper (Antunes et al. 2024) and are "
            "not repeated here: hfmat's reference table (`hfmat.evaluation.PUBLISHED_CSP`) does not carry them."
        )
    if benchmark and benchmark != dataset:  # a subset of a benchmark, e.g. mp_20_subset
        bench = BENCHMARKS[benchmark]
        text += (
            f"\n\nThe published models trained on the full {bench.pretty_name} training split "
            f"({bench.standard_splits['train']:,} crystals) and were evaluated on all "
            f"{bench.standard_splits['test']:,} structures of its test split; these figures are on "
            f"`{dataset}` split `{metrics.get('dataset_split')}`. Compare with care."
        )
    else:
        text += (
            "\n\nThe published models trained on the full training split (three times more data) and were "
            "evaluated on every test structure; compare with care."
        )
    return text, "\n".join(rows)


def write_model_card(folder, repo_id: str | None = None, eval_metrics: dict | None = None) -> Path:
    """Render README.md in ``folder`` from training_summary.json (and eval_metrics.json if present).

    A model fine-tuned with GRPO (its record says ``"method": "grpo"``) gets the reinforcement-learning
    training section and tags instead of the supervised ones."""
    from transformers import AutoConfig

    from hfmat.hub.cards import benchmark_eval_results, card_names, save_model_card
    from hfmat.hub.provenance import fine_tuned_from, portable_path, read_training_record
    from hfmat.lm.prompts import composition_prompt

    folder = Path(folder)
    record = read_training_record(folder)
    if record is None:
        raise FileNotFoundError(f"{folder} has no training_summary.json to write the model card from")
    config, summary = record["config"], record["summary"]
    if eval_metrics is None and (folder / "eval_metrics.json").is_file():
        eval_metrics = json.loads((folder / "eval_metrics.json").read_text())
    model_config = AutoConfig.from_pretrained(folder)
    name, repo_id = card_names(folder, record, repo_id)
    results = None
    rl = record.get("method") == "grpo"
    start = fine_tuned_from(record, repo_id) or config.get("init_from")  # what an RL model started from
    example = example_composition(record)
    evaluation = "Not evaluated yet: run `benchmarks/eval_lm_csp.py` on this folder."
    if rl:
        evaluation = (
            "Not evaluated here: `benchmarks/bench_reward_guidance.py --rl-model FOLDER` compares it with "
            "plain sampling and MCTS."
        )
    table = None
    if rl and (folder / REWARD_EVAL).is_file():
        evaluation, table = _reward_results(json.loads((folder / REWARD_EVAL).read_text()))
    if eval_metrics and eval_metrics.get("runs"):
        reward_part = (evaluation, table) if table else None
        evaluation, table = _results(eval_metrics)
        if reward_part:  # an RL model: the CSP figures, then the reward benchmark's
            table = f"{table}\n\n{reward_part[0]}\n\n{reward_part[1]}"
        numbers = {}
        for run in eval_metrics["runs"]:
            tag = f"@{run['k']}" + ("" if run.get("constrained") else " unconstrained")
            if run.get("temperature") is not None:
                tag += f" T{run['temperature']:g}"
            if run.get("max_attempts", 1) > 1:
                tag += f" rejection{run['max_attempts']}"
            numbers[f"match_rate{tag}"] = run["match_rate"] * 100
            numbers[f"validity{tag}"] = run["validity_rate"] * 100
            if run.get("rmse") is not None:
                numbers[f"rmse{tag}"] = run["rmse"]
        results = benchmark_eval_results(
            numbers,
            task_type="crystal-structure-prediction",
            dataset_type=eval_metrics.get("dataset_type", "perov_5"),
            dataset_split=eval_metrics.get("dataset_split", "test"),
        )
    return save_model_card(
        folder,
        "cif_lm",
        name=name,
        repo_id=repo_id,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["hfmat", "crystal-structure-generation", "cif", "materials", "gpt2"]
        + (["grpo", "trl"] if rl else []),
        record=record,
        eval_results=results,
        description=config.get("description")
        or (
            f"A CIF language model fine-tuned with reinforcement learning (GRPO) from `{start}`."
            if rl
            else f"A {summary['n_params'] / 1e6:.2f}M-parameter CIF language model trained on "
            f"`{portable_path(str(config.get('dataset')))}`."
        ),
        architecture=f"GPT-2, {model_config.n_layer} layers, {model_config.n_head} heads, width {model_config.n_embd}",
        n_params=f"{summary['n_params']:,}",
        context=model_config.n_positions,
        vocab_size=model_config.vocab_size,
        training=_rl_training_text(record, start) if rl else _training_text(record, repo_id),
        example=example,
        example_prompt=composition_prompt(example).rstrip("\n"),
        evaluation=evaluation,
        results_table=table,
        limitations=config.get("limitations")
        or (
            "The reward is a potential's energy and validity checks, not DFT: a lower CHGNet energy is not "
            "proof of stability. Check generated structures (validity report, relaxation) before use."
            if rl
            else "A small model trained briefly: it writes well-formed CIFs most reliably with hfmat's "
            "constrained decoding; generated structures need checking (validity report, relaxation) before use."
        ),
    )

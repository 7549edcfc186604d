"""The model card of a saved crystal-diffusion pipeline (template ``model_cards/diffusion.md``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

#: DiffCSP's published Perov-5 CSP figures (match rate %, RMSE) for 1 and 20 samples.
DIFFCSP_PEROV5 = {1: (52.02, 0.0760), 20: (98.60, 0.0128)}

#: The paragraph under a CSP card's results table.
CSP_COMPARISON = """Published DiffCSP numbers on Perov-5 for comparison (trained on the full training split of 11,356
crystals, 1000 steps): match rate 52.02 % / RMSE 0.0760 with 1 sample, 98.60 % / 0.0128 with 20
samples. Matching: pymatgen `StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`."""

#: A composition for a CSP card's usage example, by training dataset (default: SrTiO3).
EXAMPLE_COMPOSITION = {"carbon_24": "C8"}


def csp_comparison(dataset: str) -> str:
    """The paragraph under a CSP card's results table: :data:`CSP_COMPARISON` for Perov-5, else the
    published figures of ``hfmat.evaluation.PUBLISHED_CSP`` for ``dataset`` (empty if none)."""
    from hfmat.data.catalog import BENCHMARKS
    from hfmat.evaluation.reference import PUBLISHED_CSP

    published = PUBLISHED_CSP.get(dataset)
    if dataset == "perov_5" or not published:
        return CSP_COMPARISON if dataset == "perov_5" else ""
    bench = BENCHMARKS[dataset]
    models = sorted({m for by_model in published.values() for m in by_model})
    figures = "; ".join(
        f"{m} "
        + ", ".join(
            f"{by_model[m][0]:.2f} % / {by_model[m][1]:.4f} (k={k})" for k, by_model in published.items()
        )
        for m in models
    )
    return (
        f"Published numbers on {bench.pretty_name} (DiffCSP paper, Jiao et al. 2023, Table 1; models trained on the "
        f"full training split of {bench.standard_splits['train']:,} crystals and evaluated on all "
        f"{bench.standard_splits['test']:,} test compositions), match rate / RMSE: {figures}. "
        "Matching: pymatgen `StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`."
    )


#: Published de novo generation figures on Perov-5 (DiffCSP paper, Table 3; CDVAE's row as DiffCSP
#: reports it): validity and COV in %, Wasserstein distances of density (g/cm^3) and of the number of
#: distinct elements. Both evaluate 1,000 valid samples out of 10,000 generated.
PUBLISHED_GENERATION_PEROV5: dict[str, dict[str, float]] = {
    "CDVAE": {
        "structural_validity": 100.0,
        "compositional_validity": 98.59,
        "cov_recall": 99.45,
        "cov_precision": 98.46,
        "wdist_density": 0.1258,
        "wdist_num_elements": 0.0628,
    },
    "DiffCSP": {
        "structural_validity": 100.0,
        "compositional_validity": 98.85,
        "cov_recall": 99.74,
        "cov_precision": 98.27,
        "wdist_density": 0.1110,
        "wdist_num_elements": 0.0128,
    },
}

#: The same on Carbon-24 (DiffCSP paper, Table 4, CDVAE's row as DiffCSP reports it; composition
#: metrics are not defined for one element, so none are published).
PUBLISHED_GENERATION_CARBON24: dict[str, dict[str, float]] = {
    "CDVAE": {
        "structural_validity": 100.0,
        "cov_recall": 99.80,
        "cov_precision": 83.08,
        "wdist_density": 0.1407,
    },
    "DiffCSP": {
        "structural_validity": 100.0,
        "cov_recall": 99.90,
        "cov_precision": 97.27,
        "wdist_density": 0.0805,
    },
}

#: Published de novo figures by dataset.
PUBLISHED_GENERATION = {"perov_5": PUBLISHED_GENERATION_PEROV5, "carbon_24": PUBLISHED_GENERATION_CARBON24}

#: Generation metrics of a de novo card, in table order: key -> (label, unit is %).
GENERATION_METRICS: dict[str, tuple[str, bool]] = {
    "structural_validity": ("structural validity %", True),
    "compositional_validity": ("compositional validity %", True),
    "validity": ("valid (both) %", True),
    "cov_recall": ("COV-R %", True),
    "cov_precision": ("COV-P %", True),
    "wdist_density": ("EMD density (g/cm^3)", False),
    "wdist_num_elements": ("EMD #elements", False),
    "uniqueness": ("uniqueness % (of valid)", True),
    "novelty": ("novelty % (of valid, vs training set)", True),
}

GENERATION_COMPARISON = """Published figures (CDVAE, DiffCSP) were obtained with the full Perov-5 training split
(11,356 crystals) and 1,000 valid samples drawn from 10,000 generated; COV uses CDVAE's Perov-5
thresholds (structure fingerprint distance 0.2, normalised composition fingerprint distance 4.0).
Validity: pymatgen bond lengths above 0.5 Å and a cell volume above 0.1 Å^3 (structural), SMACT
charge neutrality with electronegativity ordering (compositional)."""

GENERATION_COMPARISON_CARBON24 = """Published figures (CDVAE, DiffCSP; DiffCSP paper, Table 4) were obtained with the full
Carbon-24 training split (6,091 crystals) and 1,000 valid samples drawn from 10,000 generated; COV
uses CDVAE's Carbon-24 thresholds (structure fingerprint distance 0.2, normalised composition
fingerprint distance 4.0). Composition metrics mean nothing for one element: none are published.
Validity: pymatgen bond lengths above 0.5 Å and a cell volume above 0.1 Å^3 (structural)."""

#: The comparison paragraph under a de novo card's table, by dataset.
GENERATION_COMPARISONS = {"perov_5": GENERATION_COMPARISON, "carbon_24": GENERATION_COMPARISON_CARBON24}


def results_table(
    rows: list[dict[str, Any]], published: dict[int, tuple[float, float]] | None = None, split: str = "test"
) -> str:
    """Markdown table of measured CSP rows: steps, corrector, k, match rate, RMSE, targets (of
    ``split``), and DiffCSP's published figure for the same k (``published``: k -> (match %, RMSE);
    Perov-5's by default)."""
    published = DIFFCSP_PEROV5 if published is None else published
    lines = [
        f"| steps | corrector | samples (k) | match rate % | RMSE | {split} compositions | DiffCSP (1000 steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = published.get(int(r["k"]))
        ref_txt = f"{ref[0]:.2f} % / {ref[1]:.4f}" if ref else ""
        rmse = "n/a" if r.get("rmse") is None else f"{r['rmse']:.4f}"
        lines.append(
            f"| {r['steps']} | {r.get('corrector', '')} | {r['k']} | {r['match_rate']:.2f} | {rmse} | {r['n']} | {ref_txt} |"
        )
    return "\n".join(lines)


def generation_table(measured: dict[str, float | None], published: dict[str, dict[str, float]]) -> str:
    """Markdown table of de novo generation metrics: hfmat's measured value (rates already in %)
    next to the published models'; a metric not measured is "n/a", one not published is blank."""
    models = list(published)
    lines = [
        "| metric | hfmat (measured) | " + " | ".join(f"{m} (published)" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for key, (label, percent) in GENERATION_METRICS.items():
        if key not in measured and not any(key in published[m] for m in models):
            continue
        fmt = (lambda v: f"{v:.2f}") if percent else (lambda v: f"{v:.4f}")  # noqa: E731
        value = measured.get(key)
        cells = ["n/a" if value is None else fmt(value)]
        cells += [fmt(published[m][key]) if key in published[m] else "" for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conditions_text(conditions: list[dict[str, Any]], drop_prob: float | None) -> str:
    """The card's Conditions section: a table of the denoiser's conditions (docs/guidance.md)."""
    rows = ["| condition | kind | training values |", "|---|---|---|"]
    for c in conditions:
        if c.get("kind") == "scalar":
            rows.append(f"| `{c['name']}` | scalar | mean {c['mean']:.4g}, std {c['std']:.4g} |")
        elif c.get("kind") == "text":
            pooled = (
                "the mean of its last hidden states over the prompt's tokens"
                if c.get("pooling") == "mean"
                else "its pooler output"
            )
            rows.append(
                f"| `{c['name']}` | text | a description, embedded ({c['dim']} wide) by the "
                f"pipeline's text_encoder ({pooled}); `prompt=` |"
            )
        else:
            rows.append(f"| `{c['name']}` | categorical | classes 0..{int(c['num_classes']) - 1} |")
    dropped = (
        f"Each condition was left out of a training example with probability {drop_prob:g}, so"
        if drop_prob is not None
        else "Trained with conditions left out at random, so"
    )
    return (
        "Sampling can be steered toward property values with classifier-free guidance: pass "
        "`conditions={name: value}` and `guidance_scale` (1.0: plain conditional sampling; above 1: "
        "guided; no conditions: unconditional).\n\n"
        + "\n".join(rows)
        + f"\n\n{dropped} the same weights also sample unconditionally. Scalar values are given in "
        "the property's own units (the model normalises them with the training mean and std above); a "
        "value far outside the training range draws a warning. How to sample with a condition and how "
        "to add one: hfmat's docs/guidance.md."
        + (
            " A text condition takes a description as `prompt=` (`hfmat diffuse --prompt`), embedded by "
            "the pipeline's own text encoder; without a prompt it uses its null embedding "
            "(unconditional). hfmat's docs/text_guidance.md."
            if any(c.get("kind") == "text" for c in conditions)
            else ""
        )
    )


def element_head_text(folder: Path) -> str:
    """A paragraph on the pipeline's element head (its element_head/training.json), or ""."""
    path = folder / "element_head" / "training.json"
    if not path.is_file():
        return ""
    report = json.loads(path.read_text())
    rates = ", ".join(
        f"{style.removeprefix('text_')} {100 * rate:.1f} %"
        for style, rate in report["holdout_exact_element_set"].items()
    )
    return (
        "\n\nElement guidance: the pipeline's `element_head` (hfmat.diffusion.element_head, a "
        f"{report['hidden_dim']}-wide MLP on the same {report['pooling']}-pooled prompt embedding) says which "
        "elements the prompt's crystal holds; with a prompt, each atom type is drawn from the denoiser's "
        "distribution times the head's element probabilities to the power `element_guidance` (default 1; "
        "0 turns it off; `hfmat diffuse --element-guidance`). It was trained on the descriptions of "
        f"{report['train_crystals']:,} {report['dataset']} {report['split']} crystals "
        f"(`{report['command']}`); on {report['holdout_crystals']} held-out crystals its top elements "
        f"are exactly the crystal's for {rates} of the descriptions."
    )


def _stage_text(cfg: dict[str, Any], summ: dict[str, Any], de_novo: bool) -> str:
    ev = summ.get("eval") or {}
    nan = float("nan")
    text = (
        f"{summ.get('step')} optimizer steps ({summ.get('epochs', 0):.1f} epochs) of batch "
        f"{cfg.get('per_device_batch_size')} x {summ.get('num_processes')} process(es) x accumulation "
        f"{cfg.get('gradient_accumulation_steps')}, AdamW lr {cfg.get('lr')} (warm-up {cfg.get('warmup_steps')}, "
        f"cosine decay), EMA decay {cfg.get('ema_decay')}; {summ.get('wall_s', 0) / 60:.1f} min wall time at "
        f"{summ.get('steps_per_s', 0):.2f} steps/s on {cfg.get('num_threads') or 'all'} CPU thread(s). "
        f"Held-out loss at the end {ev.get('loss', nan):.4f} (lattice {ev.get('lattice', nan):.4f}, "
        f"coordinates {ev.get('coord', nan):.4f}"
    )
    return text + (f", types {ev.get('type', nan):.4f})." if de_novo else ").")


def _training_text(record: dict[str, Any] | None, repo_id: str, de_novo: bool) -> str:
    """The card's training section: the data of the last stage, then one paragraph per stage (each
    names its own data when the stages did not all train on the same data)."""
    from hfmat.hub.provenance import data_sentence, origin_sentence, stages

    if not record or not record.get("summary"):
        return "No training summary was saved with this pipeline."
    runs = stages(record)
    data = [data_sentence(stage) for stage in runs]
    same_data = len(set(data)) == 1
    last = runs[-1]
    head = f"Dataset: {data[-1]}. {last['config'].get('dataset_note', '')}".rstrip()
    if not same_data:
        head = f"Dataset of the last stage: {data[-1]}. {last['config'].get('dataset_note', '')}".rstrip()
        head += " Each stage below names the data it trained on."
    parts = []
    for i, stage in enumerate(runs, start=1):
        sentences = [f"On {data[i - 1]}."] if not same_data else []
        origin = origin_sentence(stage, repo_id)
        if i > 1 and (origin is None or origin.startswith(("Continued", "Started"))):
            sentences.append("Continued from the stage before (`--init-from`), fresh optimizer and schedule.")
        elif origin:
            sentences.append(f"{origin} Fresh optimizer and schedule.")
        sentences.append(_stage_text(stage["config"], stage["summary"], de_novo))
        text = " ".join(sentences)
        if len(runs) > 1:  # "Stage 2: continued from ..." as before
            text = f"Stage {i}: {text[0].lower()}{text[1:]}"
        parts.append(text)
    return head + "\n\n" + "\n\n".join(parts) + "\n\nScript: `training/train_diffusion.py` (Accelerate)."


def write_model_card(
    folder: str | Path, evaluation: dict[str, Any] | None = None, repo_id: str | None = None
) -> Path:
    """Write ``folder/README.md`` from the pipeline's configs, ``training_summary.json`` and, when
    given, ``evaluation`` = {"text": ..., "rows": [...results_table rows...], "dataset": "perov_5"}
    for a structure-prediction model, or, for a de novo model, {"text": ..., "generation": {metric:
    value, ...}, "dataset": "perov_5"} with the :data:`GENERATION_METRICS` keys (validity, COV,
    uniqueness and novelty in %; None = not measured) and optionally "published" (model -> metrics,
    default the dataset's from :data:`PUBLISHED_GENERATION`). Either may carry "limitations" and
    "split" (the split evaluated on, default "test")."""
    from hfmat.evaluation.reference import PUBLISHED_CSP
    from hfmat.hub.cards import benchmark_eval_results, card_names, save_model_card
    from hfmat.hub.provenance import read_training_record

    folder = Path(folder)
    den = json.loads((folder / "denoiser" / "config.json").read_text())
    coord = json.loads((folder / "coord_scheduler" / "scheduler_config.json").read_text())
    index = json.loads((folder / "model_index.json").read_text())
    record = read_training_record(folder)
    de_novo = index.get("type_scheduler", [None])[0] is not None and den.get("predict_atom_types", False)
    name, repo_id = card_names(folder, record, repo_id)

    n_params = 0
    for f in (folder / "denoiser").glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            n_params += sum(math.prod(st.get_slice(key).get_shape()) for key in st.keys())

    if de_novo:
        usage = (
            "out = pipe(num_samples=8, num_inference_steps=200, generator=torch.Generator().manual_seed(0))\n"
            "print([s.composition.reduced_formula for s in out.structures])"
        )
        cli_usage = "--num-samples 8"
    conditions = den.get("conditions") or []
    evaluation = evaluation or {}
    dataset_type = evaluation.get("dataset", ((record or {}).get("config") or {}).get("dataset") or "perov_5")
    if not de_novo:
        example = EXAMPLE_COMPOSITION.get(dataset_type, "SrTiO3")
        usage = (
            f'out = pipe(compositions=["{example}"], num_samples=4, num_inference_steps=200,\n'
            '           generator=torch.Generator().manual_seed(0), output_type="cif")\n'
            "print(out.cifs[0])"
        )
        cli_usage = f"--composition {example} --num-samples 4"
    text = [c for c in conditions if c.get("kind") == "text"]
    if text and de_novo:
        from hfmat.diffusion.text import EXAMPLE_PROMPT

        usage = (
            f'out = pipe(prompt="{EXAMPLE_PROMPT}", num_samples=8, guidance_scale=2.0,\n'
            "           num_inference_steps=200, generator=torch.Generator().manual_seed(0))\n"
            "print([s.composition.reduced_formula for s in out.structures])"
        )
        cli_usage = f'--prompt "{EXAMPLE_PROMPT}" --num-samples 8 --guidance-scale 2'
    elif conditions:
        c = conditions[0]
        value = f"{c['mean']:.3g}" if c.get("kind") == "scalar" else "0"
        example = EXAMPLE_COMPOSITION.get(dataset_type, "SrTiO3")
        where = "" if de_novo else f'compositions=["{example}"], '
        usage = (
            f'out = pipe({where}num_samples=8, conditions={{"{c["name"]}": {value}}}, guidance_scale=2.0,\n'
            "           num_inference_steps=200, generator=torch.Generator().manual_seed(0))\n"
            "print([s.composition.reduced_formula for s in out.structures])"
        )
        cli_usage = ("" if de_novo else f"--composition {example} ") + (
            f"--num-samples 8 --condition {c['name']}={value} --guidance-scale 2"
        )
    rows = evaluation.get("rows") or []
    generation = evaluation.get("generation")
    if generation is not None and not de_novo:
        raise ValueError(f"{folder}: generation metrics given for a structure-prediction pipeline")
    metrics = {}
    for r in rows:  # the first row of each (k, steps) goes into the model-index
        metrics.setdefault(f"match_rate@{r['k']} ({r['steps']} steps)", float(r["match_rate"]))
        if r.get("rmse") is not None:
            metrics.setdefault(f"rmse@{r['k']} ({r['steps']} steps)", float(r["rmse"]))
    task_type = "crystal-structure-prediction"
    diffcsp = {k: by_model["DiffCSP"] for k, by_model in PUBLISHED_CSP.get(dataset_type, {}).items()}
    table = results_table(rows, diffcsp, evaluation.get("split", "test")) if rows else None
    comparison = "" if de_novo else csp_comparison(dataset_type)
    if generation is not None:
        unknown = sorted(set(generation) - set(GENERATION_METRICS))
        if unknown:
            raise ValueError(f"unknown generation metric(s) {unknown}; known: {list(GENERATION_METRICS)}")
        published = evaluation.get("published", PUBLISHED_GENERATION.get(dataset_type, {}))
        task_type = "crystal-generation"
        metrics = {k: float(v) for k, v in generation.items() if v is not None}
        table = generation_table(generation, published)
        comparison = GENERATION_COMPARISONS.get(dataset_type, "") if published else ""
    results = (
        benchmark_eval_results(
            metrics,
            task_type=task_type,
            dataset_type=dataset_type,
            dataset_split=evaluation.get("split", "test"),
        )
        if metrics
        else None
    )
    return save_model_card(
        folder,
        "diffusion",
        name=name,
        repo_id=repo_id,
        # hfmat, not diffusers: diffusers' generic DiffusionPipeline cannot load it (the template says why)
        library_name="hfmat",
        tags=[
            "materials",
            "crystal-generation" if de_novo else "crystal-structure-prediction",
            "diffusion",
            "diffusers",
            "hfmat",
            "pymatgen",
        ],
        record=record,
        eval_results=results,
        description=(
            "Crystal structure prediction: given a composition (the cell content), it samples the lattice "
            "and the atomic positions."
            if not de_novo
            else "De novo crystal generation: atom counts, atom types, lattice and positions."
        ),
        task="de novo generation" if de_novo else "crystal structure prediction (CSP)",
        usage=usage,
        cli_usage=cli_usage,
        n_params=f"{n_params:,}",
        architecture=(
            f"{den['num_layers']} message-passing layers, width {den['hidden_dim']}, fully connected within each "
            f"cell, {den['num_frequencies']} Fourier frequencies on fractional differences, Gram-matrix lattice features"
            + (
                "; the condition embedding enters beside the timestep and, through a linear map per layer, "
                "before every layer"
                if den.get("condition_every_layer")
                else ""
            )
        ),
        num_train_timesteps=coord["num_train_timesteps"],
        lattice_scale=f"{den['lattice_scale']:.4f}",
        sigma_min=coord["sigma_min"],
        sigma_max=coord["sigma_max"],
        type_diffusion="absorbing-state D3PM" if de_novo else "given (the condition), not diffused",
        max_atoms=den["max_atoms"],
        conditions=conditions_text(
            conditions, ((record or {}).get("config") or {}).get("condition_drop_prob")
        )
        + element_head_text(folder)
        if conditions
        else None,
        training=_training_text(record, repo_id, de_novo),
        evaluation=evaluation.get("text") or "Not evaluated yet.",
        results_table=table,
        comparison=comparison,
        limitations=evaluation.get(
            "limitations",
            "Trained on a small CPU budget; samples are not relaxed. A structure-prediction model only "
            "handles compositions like those it was trained on.",
        ),
    )

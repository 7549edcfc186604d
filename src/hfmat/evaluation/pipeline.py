"""The whole of ``hfmat evaluate``: read predictions and references, compute the metrics, check
every CIF text, write ``metrics.json``, ``report.md`` and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from hfmat.evaluation.io import (
    check_readable,
    load_reference,
    parse_cifs,
    read_csp_inputs,
    read_predictions,
    split_source,
    unreadable_issues,
)
from hfmat.evaluation.report import plot_hist, plot_validity, write_metrics, write_report
from hfmat.evaluation.validity import validity_summary


def _check_texts(texts: list[str | None], workers: int | None, progress: bool) -> dict[str, Any] | None:
    """``validity_summary`` of ``hfmat.cif.check_validity`` over the texts (None if the codec has no
    validity checker)."""
    try:
        from hfmat.cif.validity import check_validity  # noqa: F401
    except ImportError:
        return None
    from hfmat.evaluation.parallel import pool_map

    reports = pool_map(_check_one, texts, workers=workers, desc="CIF validity", progress=progress)
    return validity_summary(reports)


def _check_one(text: str | None):
    from hfmat.cif.validity import check_validity

    if not isinstance(text, str):
        return "no CIF text"
    try:
        return check_validity(text)
    except Exception as err:  # noqa: BLE001 - reported per item
        return f"check_validity raised {type(err).__name__}: {err}"


def _reference_structures(ids: list[str], cifs: list[str], workers, progress):
    parsed = parse_cifs(cifs, workers=workers, progress=progress, desc="parse references")
    issues = []
    refs: dict[str, Structure | str] = {}
    for mid, (s, err) in zip(ids, parsed):
        if mid in refs:
            issues.append({"material_id": mid, "issue": "repeated material_id in the reference; first kept"})
            continue
        refs[mid] = s if s is not None else f"reference CIF unparseable: {err}"
        if s is None:
            issues.append({"material_id": mid, "issue": refs[mid]})
    return refs, issues


def evaluate(
    task: str,
    predictions: str | Path,
    reference: str,
    out_dir: str | Path,
    *,
    k: int | None = None,
    data_dir: str | Path | None = None,
    train: str | None = None,
    dataset: str | None = None,
    n_samples: int | None = None,
    subset: bool = False,
    max_cif_checks: int | None = 1000,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run one evaluation and write its files into ``out_dir``; returns the metrics.

    CSP: every target of the reference counts (one with no prediction is unmatched) unless
    ``subset`` restricts the targets to those that have predictions (what ``hfmat evaluate`` does
    by default). Raises ValueError, before anything is written, when no prediction could be read
    or (CSP) none names a target of the reference. The codec's CIF validity checks
    (slow: a bond-length check per text) run on at most ``max_cif_checks`` texts, a seeded random
    sample when there are more (None: all; 0: none)."""
    if task not in ("csp", "generation"):
        raise ValueError(f"task must be 'csp' or 'generation', got {task!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    dataset = dataset or split_source(reference)[0]
    if task == "csp":
        inputs = read_csp_inputs(
            predictions, reference, data_dir=data_dir, subset=subset, workers=workers, progress=progress
        )
        records, parsed, cands, group_issues = inputs.records, inputs.parsed, inputs.candidates, inputs.issues
        ref_ids, ref_cifs, n_reference = inputs.ref_ids, inputs.ref_cifs, inputs.n_reference
    else:
        records = read_predictions(predictions)
        check_readable(records, predictions)
        ref_ids, ref_cifs = load_reference(reference, data_dir=data_dir)
        n_reference = len(ref_ids)
        parsed = parse_cifs([r.cif for r in records], workers=workers, progress=progress)
        cands, group_issues = {}, []
    texts = [r.cif for r in records]
    read_issues = unreadable_issues(records, parsed, predictions)
    refs, ref_issues = _reference_structures(ref_ids, ref_cifs, workers, progress)
    ref_structs = [s for s in refs.values() if isinstance(s, Structure)]
    plots: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to be usable

    if task == "csp":
        from hfmat.evaluation.csp import csp_metrics

        metrics = csp_metrics(cands, refs, k=k, workers=workers, progress=progress)
        metrics["issues"] = read_issues + group_issues + ref_issues + metrics["issues"]
        rms = [r["rms"] for r in metrics["per_target"] if r["matched"]]
        plots.append(
            plot_hist(
                out / "rms_hist.png",
                f"best RMS of matched targets (k={metrics['k']})",
                "normalised RMS distance",
                {"hfmat": rms},
            )
        )
        generated = [c for cl in cands.values() for c in cl[: k or None] if isinstance(c, Structure)]
    else:
        from hfmat.evaluation.generation import generation_metrics

        generated_all = [s if s is not None else (rec.error or err) for rec, (s, err) in zip(records, parsed)]
        train_structs = None
        if train is not None:
            t_ids, t_cifs = load_reference(train, data_dir=data_dir, default_split="train")
            t_refs, t_issues = _reference_structures(t_ids, t_cifs, workers, progress)
            ref_issues += t_issues
            train_structs = [s for s in t_refs.values() if isinstance(s, Structure)]
        metrics = generation_metrics(
            generated_all,
            train_structs,
            ref_structs,
            dataset=dataset,
            n_samples=n_samples,
            workers=workers,
            progress=progress,
        )
        for rec, row in zip(records, metrics["per_sample"]):
            row["source"] = rec.source
        metrics["issues"] = read_issues + ref_issues + metrics["issues"]
        generated = [s for s in generated_all if isinstance(s, Structure)]

    label = "predicted" if task == "csp" else "generated"
    metrics["n_predictions"] = len(records)
    metrics["n_unreadable"] = len(read_issues)
    if task == "csp":
        metrics["n_reference_targets"] = n_reference
    plots.append(
        plot_hist(
            out / "density.png",
            "density",
            "density (g/cm$^3$)",
            {label: [s.density for s in generated], "reference": [s.density for s in ref_structs]},
        )
    )
    plots.append(
        plot_hist(
            out / "num_atoms.png",
            "atoms per cell",
            "number of atoms",
            {label: [len(s) for s in generated], "reference": [len(s) for s in ref_structs]},
            discrete=True,
        )
    )
    checked = texts
    if max_cif_checks is not None and len(texts) > max_cif_checks:
        import random

        checked = random.Random(seed).sample(texts, max_cif_checks)
    summary = _check_texts(checked, workers, progress) if checked else None
    if summary is not None:
        summary["sampled_from"] = len(texts)
        metrics["cif_validity"] = summary
        plots.append(plot_validity(out / "validity_by_check.png", summary))
    elif not checked:
        why = "there are no CIF texts" if not texts else "max_cif_checks is 0"
        metrics["issues"].append({"material_id": None, "issue": f"CIF validity by check skipped: {why}"})
    else:
        metrics["issues"].append(
            {
                "material_id": None,
                "issue": "hfmat.cif.validity is not available: CIF validity by check not computed",
            }
        )
    context = {
        "predictions": str(predictions),
        "reference": reference,
        "train": train,
        "dataset": dataset,
        "k": metrics.get("k"),
    }
    metrics["inputs"] = context
    write_metrics(metrics, out)
    write_report(metrics, out, plots, context)
    return metrics

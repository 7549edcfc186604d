"""Writing an evaluation: ``metrics.json``, ``report.md`` (hfmat's figures beside the published
ones) and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hfmat.evaluation.reference import PUBLISHED_CSP, PUBLISHED_GENERATION, canonical_dataset


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _num(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _json_default(obj: Any):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def write_metrics(metrics: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=_json_default) + "\n")
    return path


def _csp_table(m: dict[str, Any], dataset: str | None) -> list[str]:
    k = m.get("k") or 1
    lines = ["| model | k | match rate % | RMSE |", "|---|---|---|---|"]
    lines.append(f"| **hfmat (this run)** | 1 | {_pct(m.get('match_rate_k1'))} | {_num(m.get('rmse_k1'))} |")
    if k != 1:
        lines.append(f"| **hfmat (this run)** | {k} | {_pct(m.get('match_rate'))} | {_num(m.get('rmse'))} |")
    published = PUBLISHED_CSP.get(dataset or "", {})
    for kk in sorted(published):
        for model, (rate, rmse) in published[kk].items():
            lines.append(f"| {model} (published) | {kk} | {rate:.2f} | {rmse:.4f} |")
    if not published:
        lines.append("| (no published figures for this dataset) | | | |")
    return lines


_GEN_ROWS = [
    ("structural_validity", "structural validity %", True),
    ("compositional_validity", "compositional validity %", True),
    ("cov_recall", "COV-R %", True),
    ("cov_precision", "COV-P %", True),
    ("wdist_density", "EMD density", False),
    ("wdist_num_elements", "EMD #elements", False),
    ("uniqueness", "uniqueness %", True),
    ("novelty", "novelty %", True),
]


def _gen_table(m: dict[str, Any], dataset: str | None) -> list[str]:
    published = PUBLISHED_GENERATION.get(dataset or "", {})
    models = list(published)
    header = ["metric", "**hfmat (this run)**"] + [f"{p} (published)" for p in models]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label, pct in _GEN_ROWS:
        ours = _pct(m.get(key)) if pct else _num(m.get(key))
        theirs = [
            (_num(published[p].get(key), 2 if pct else 4) if key in published[p] else "–") for p in models
        ]
        lines.append("| " + " | ".join([label, ours, *theirs]) + " |")
    return lines


def _issues(m: dict[str, Any], limit: int = 50) -> list[str]:
    issues = m.get("issues") or []
    if not issues:
        return ["No input problems."]
    lines = [f"{len(issues)} input problem(s) (all listed in metrics.json):", ""]
    for it in issues[:limit]:
        who = it.get("material_id") or it.get("source") or it.get("index")
        lines.append(f"- {who if who is not None else '(all)'}: {it['issue']}")
    if len(issues) > limit:
        lines.append(f"- ... {len(issues) - limit} more")
    return lines


def write_report(metrics: dict[str, Any], out_dir: Path, plots: list[Path], context: dict[str, Any]) -> Path:
    dataset = canonical_dataset(context.get("dataset"))
    task = metrics["task"]
    lines = [f"# hfmat evaluation: {task}", ""]
    for key in ("predictions", "reference", "train", "dataset", "k", "subset"):
        if context.get(key) is not None:
            lines.append(f"- {key}: `{context[key]}`")
    lines.append("")
    if task == "csp":
        lines += [
            f"{metrics['n_targets']} targets, {metrics['n_candidates']} candidates "
            f"({_pct(metrics.get('structural_validity'))} % structurally valid), "
            f"{metrics['n_matched']} targets matched. StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3); "
            "a target is matched when any of its first k valid candidates matches; RMSE is the mean over "
            "matched targets of the best normalised RMS distance.",
            "",
        ]
        lines += _csp_table(metrics, dataset)
    else:
        lines += [
            f"{metrics['n_generated']} generated samples, {metrics['n_valid']} valid "
            "(structurally and compositionally). COV thresholds: CDVAE's per dataset.",
            "",
        ]
        lines += _gen_table(metrics, dataset)
    lines += [
        "",
        "Published figures: CDVAE (Xie et al. 2021), DiffCSP (Jiao et al. 2023), CrystaLLM "
        "(Antunes et al. 2024), all trained on the full training splits. A model trained here on a "
        "smaller split is not directly comparable.",
        "",
    ]
    val = metrics.get("cif_validity")
    if val:
        lines += [
            "## CIF validity by check",
            "",
            f"{val['n_valid']} of {val['n']} CIF texts valid ({_pct(val['validity'])} %"
            + (
                f", a random sample of the {val['sampled_from']} texts"
                if val.get("sampled_from", val["n"]) > val["n"]
                else ""
            )
            + "); "
            f"{val['not_checked']} could not be checked"
            + (f"; space-group check in {val['mode']} mode." if val.get("mode") else "."),
            "",
            "| check | run | passed | pass rate % | commonest failure |",
            "|---|---|---|---|---|",
        ]
        for c in val["checks"]:
            top = c["top_failures"][0]["example"] if c["top_failures"] else ""
            lines.append(f"| {c['name']} | {c['n_run']} | {c['n_passed']} | {_pct(c['pass_rate'])} | {top} |")
        lines.append("")
    lines += ["## Input problems", ""] + _issues(metrics) + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_hist(
    path: Path,
    title: str,
    xlabel: str,
    series: dict[str, list[float]],
    bins: int = 30,
    discrete: bool = False,
) -> Path:
    """Overlaid, density-normalised histograms of each named series (empty ones skipped)."""
    plt, fig, ax = _figure()
    data = {k: [float(x) for x in v if x is not None] for k, v in series.items()}
    data = {k: v for k, v in data.items() if v}
    if data:
        lo = min(min(v) for v in data.values())
        hi = max(max(v) for v in data.values())
        edges = [x - 0.5 for x in range(int(lo), int(hi) + 2)] if discrete else (bins if hi > lo else 1)
        for name, v in data.items():
            ax.hist(v, bins=edges, alpha=0.55, density=len(data) > 1, label=f"{name} (n={len(v)})")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if len(data) > 1 else "count")
    return _save(plt, fig, path)


def plot_validity(path: Path, summary: dict[str, Any]) -> Path:
    """Pass rate per CIF validity check."""
    plt, fig, ax = _figure()
    checks = summary["checks"]
    names = [c["name"] for c in checks] + ["all checks"]
    rates = [100 * (c["pass_rate"] or 0.0) for c in checks] + [100 * (summary["validity"] or 0.0)]
    ax.barh(names[::-1], rates[::-1], color="#4C72B0")
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate %")
    ax.set_title(f"CIF validity by check (n={summary['n']})")
    return _save(plt, fig, path)

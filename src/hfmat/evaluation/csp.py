"""Crystal structure prediction metrics: match rate and RMSE, as CDVAE / DiffCSP / CrystaLLM count
them.

Each target has k candidate structures. A candidate counts only if it is structurally valid
(``hfmat.cif.structural.structural_validity``); the target is matched if any counted candidate
matches it under ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``, and its RMS is the smallest
normalised RMS distance (pymatgen's ``get_rms_dist``, divided by (V/n)^(1/3)) among its matching
candidates. Match rate = matched targets / all targets; RMSE = mean RMS over matched targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from hfmat.cif.structural import structural_validity
from hfmat.evaluation.matching import CSP_MATCHER, PairCache, match_pairs

Candidate = Structure | str | None
"""A prediction: a Structure, or None / a string saying why there is no structure (e.g. a parse error)."""


def _as_aligned(predictions, references) -> tuple[list[str], list[list[Candidate]], list[Any], list[dict]]:
    """Return ids, candidate lists and targets in one order, plus issues about ids."""
    issues: list[dict] = []
    if isinstance(references, Mapping):
        if not isinstance(predictions, Mapping):
            raise ValueError(
                "references is a mapping of id -> Structure, so predictions must map id -> candidates"
            )
        ids = [str(i) for i in references]
        refs = list(references.values())
        preds = []
        for mid in references:
            cands = predictions.get(mid)
            if cands is None:
                issues.append({"material_id": str(mid), "issue": "no prediction for this target"})
                cands = []
            preds.append(list(cands) if isinstance(cands, (list, tuple)) else [cands])
        for mid in predictions:
            if mid not in references:
                issues.append(
                    {"material_id": str(mid), "issue": "prediction for an id that is not a target; ignored"}
                )
        return ids, preds, refs, issues
    references = list(references)
    predictions = list(predictions)
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} prediction lists for {len(references)} targets: pass one list of "
            "candidates per target, in the targets' order (or two mappings keyed by id)"
        )
    preds = [list(c) if isinstance(c, (list, tuple)) else [c] for c in predictions]
    return [str(i) for i in range(len(references))], preds, references, issues


def _validity(candidate: Candidate) -> tuple[bool, str]:
    if isinstance(candidate, Structure):
        try:
            return structural_validity(candidate)
        except Exception as err:  # noqa: BLE001 - a degenerate lattice must not stop the evaluation
            return False, f"validity check failed: {type(err).__name__}: {err}"
    if candidate is None:
        return False, "no structure"
    return False, str(candidate)


def _summary(per_target: list[dict], key_matched: str, key_rms: str) -> tuple[float | None, float | None]:
    if not per_target:
        return None, None
    rms = [t[key_rms] for t in per_target if t[key_matched]]
    return len(rms) / len(per_target), (float(np.mean(rms)) if rms else None)


def csp_metrics(
    predictions: Sequence[Sequence[Candidate]] | Mapping[str, Sequence[Candidate]],
    references: Sequence[Structure] | Mapping[str, Structure],
    k: int | None = None,
    *,
    matcher: dict[str, Any] | None = None,
    workers: int | None = None,
    cache: PairCache | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Match rate and RMSE of ``predictions`` against ``references``.

    ``predictions`` holds, per target, a list of candidates (Structure, or None / an error string for
    a sample that gave no structure); either a list aligned with ``references`` or a mapping keyed by
    the same ids as a ``references`` mapping. The first ``k`` candidates of each target are used
    (default: all). Returns ``match_rate`` (a fraction), ``rmse`` (None when nothing matched),
    the same two for the first candidate only (``match_rate_k1``, ``rmse_k1``), counts, and
    ``per_target`` / ``issues`` lists that say what happened to every target and candidate.
    """
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids, preds, refs, issues = _as_aligned(predictions, references)
    per_target: list[dict] = []
    pairs: list[tuple[Structure, Structure]] = []
    where: list[tuple[int, int]] = []
    for t, (mid, cands, ref) in enumerate(zip(ids, preds, refs)):
        cands = cands if k is None else cands[:k]
        row: dict[str, Any] = {
            "material_id": mid,
            "n_candidates": len(cands),
            "n_valid": 0,
            "matched": False,
            "rms": None,
            "best_index": None,
            "matched_k1": False,
            "rms_k1": None,
            "candidates": [],
        }
        if k is not None and 0 < len(cands) < k:
            issues.append({"material_id": mid, "issue": f"only {len(cands)} of k={k} candidates"})
        if not isinstance(ref, Structure):
            row["error"] = f"target has no structure: {ref if ref is not None else 'missing'}"
            issues.append({"material_id": mid, "issue": row["error"]})
        for j, cand in enumerate(cands):
            ok, reason = _validity(cand)
            row["candidates"].append({"index": j, "valid": ok, "reason": None if ok else reason, "rms": None})
            if ok:
                row["n_valid"] += 1
                if isinstance(ref, Structure):
                    pairs.append((cand, ref))
                    where.append((t, j))
        per_target.append(row)

    answers = match_pairs(
        pairs,
        op="rms",
        matcher=matcher,
        workers=workers,
        cache=cache,
        desc="StructureMatcher",
        progress=progress,
    )
    for (t, j), (rms, error) in zip(where, answers):
        cand = per_target[t]["candidates"][j]
        cand["rms"] = rms
        if error is not None:
            cand["reason"] = f"matcher error: {error}"
    for row in per_target:
        matched = [(c["rms"], c["index"]) for c in row["candidates"] if c["rms"] is not None]
        if matched:
            row["rms"], row["best_index"] = min(matched)
            row["matched"] = True
        first = row["candidates"][0] if row["candidates"] else None
        if first is not None and first["rms"] is not None:
            row["matched_k1"], row["rms_k1"] = True, first["rms"]

    match_rate, rmse = _summary(per_target, "matched", "rms")
    match_rate_k1, rmse_k1 = _summary(per_target, "matched_k1", "rms_k1")
    n_cand = sum(r["n_candidates"] for r in per_target)
    n_valid = sum(r["n_valid"] for r in per_target)
    if not per_target:
        issues.append({"material_id": None, "issue": "no targets to evaluate"})
    elif n_cand == 0:
        issues.append({"material_id": None, "issue": "the prediction set is empty"})
    return {
        "task": "csp",
        "k": k if k is not None else max((r["n_candidates"] for r in per_target), default=0),
        "matcher": dict(CSP_MATCHER if matcher is None else matcher),
        "n_targets": len(per_target),
        "n_matched": sum(r["matched"] for r in per_target),
        "match_rate": match_rate,
        "rmse": rmse,
        "match_rate_k1": match_rate_k1,
        "rmse_k1": rmse_k1,
        "n_candidates": n_cand,
        "n_structurally_valid": n_valid,
        "structural_validity": (n_valid / n_cand) if n_cand else None,
        "per_target": per_target,
        "issues": issues,
    }

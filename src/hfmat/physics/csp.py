"""Structure prediction before and after relaxation: does relaxing the samples bring them closer to the
DFT ground truth, and how far above the relaxed ground truth do they sit in energy?

:func:`csp_relaxation` relaxes every candidate and every target structure with the same potential,
then scores the candidates with hfmat's CSP metrics (:func:`hfmat.evaluation.csp.csp_metrics`:
match rate and RMSE): ``before`` and ``after`` against the DFT targets, and
``after_vs_relaxed_targets`` with both sides relaxed (the potential moves the DFT structures too,
so this asks whether sample and target fall into the same minimum). A candidate whose relaxation
fails counts as invalid after. The energy gap of a target is E(first candidate,
relaxed) - E(target, relaxed) in eV/atom: about 0 when the sample relaxes into the ground truth's
basin, positive when it finds a higher minimum (negative: lower than the relaxed ground truth, as
the potential sees it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from hfmat.physics.potentials import Potential, load_potential
from hfmat.physics.relaxation import relax


def csp_relaxation(
    predictions: Mapping[str, Sequence[Structure | str | None]],
    references: Mapping[str, Structure],
    potential: str | Potential = "chgnet",
    k: int | None = None,
    progress: bool = True,
    **relax_options,
) -> dict[str, Any]:
    """CSP metrics of ``predictions`` (id -> candidates) against ``references`` (id -> Structure)
    before and after relaxing the candidates, and the energy gap to the relaxed targets."""
    from hfmat.evaluation.csp import csp_metrics

    ids = list(references)
    cands = {mid: list(predictions.get(mid, []))[:k] if k else list(predictions.get(mid, [])) for mid in ids}
    flat = [(mid, j, c) for mid in ids for j, c in enumerate(cands[mid]) if isinstance(c, Structure)]
    targets = [references[mid] for mid in ids]
    done = relax([c for _, _, c in flat] + targets, potential, progress=progress, **relax_options)
    relaxed_cands, target_results = done[: len(flat)], done[len(flat) :]
    after = {mid: list(cs) for mid, cs in cands.items()}
    first_energy: dict[str, float] = {}
    for (mid, j, _), result in zip(flat, relaxed_cands):
        after[mid][j] = result.structure if result.ok else f"relaxation failed: {result.error}"
        if j == 0 and result.ok:
            first_energy[mid] = result.energy_final
    gaps = {}
    for mid, target in zip(ids, target_results):
        if target.ok and mid in first_energy:
            gaps[mid] = first_energy[mid] - target.energy_final
    summary_keys = ("match_rate", "rmse", "match_rate_k1", "rmse_k1")
    relaxed_refs = {
        mid: t.structure if t.ok else f"relaxation failed: {t.error}" for mid, t in zip(ids, target_results)
    }
    before_m = csp_metrics(cands, references, k=k, progress=False)
    after_m = csp_metrics(after, references, k=k, progress=False)
    both_m = csp_metrics(after, relaxed_refs, k=k, progress=False)
    values = np.array(list(gaps.values()))
    return {
        "n_targets": len(ids),
        "n_candidates": len(flat),
        "relaxed": sum(r.ok for r in relaxed_cands),
        "converged": sum(r.converged for r in relaxed_cands),
        "before": {key: before_m[key] for key in summary_keys},
        "after": {key: after_m[key] for key in summary_keys},
        "after_vs_relaxed_targets": {key: both_m[key] for key in summary_keys},
        "energy_gap_mean": float(values.mean()) if len(values) else None,
        "energy_gap_median": float(np.median(values)) if len(values) else None,
        "within_10_mev": float(np.mean(values <= 0.01)) if len(values) else None,
        "energy_gap": gaps,
        "potential": load_potential(potential).description,
    }


def csp_inputs(
    predictions: str | Path, reference: str, data_dir: str | Path | None = None, workers: int | None = 1
) -> tuple[dict[str, list[Structure | str]], dict[str, Structure]]:
    """``(candidates, targets)`` for :func:`csp_relaxation` from a run's predictions (anything
    ``hfmat evaluate`` reads) and its reference ``SOURCE[:SPLIT]``: only the targets that have
    predictions. ValueError when no prediction is readable or none names a reference target."""
    from hfmat.evaluation.io import parse_cifs, read_csp_inputs

    inputs = read_csp_inputs(predictions, reference, data_dir=data_dir, workers=workers, progress=False)
    structures = parse_cifs(inputs.ref_cifs, workers=workers, progress=False)
    targets = {mid: s for mid, (s, _) in zip(inputs.ref_ids, structures) if s is not None}
    return {mid: inputs.candidates[mid] for mid in targets}, targets

"""De novo generation metrics, as CDVAE / DiffCSP report them, plus uniqueness and novelty.

- structural validity (``hfmat.cif.structural.structural_validity``) and compositional validity
  (SMACT, :mod:`hfmat.evaluation.composition`); a sample is valid when both hold;
- COV-R / COV-P: the fraction of reference (test) crystals with a generated crystal within both
  fingerprint thresholds, and the fraction of generated crystals within both thresholds of some
  reference crystal (over *all* generated samples, as CDVAE divides by the number generated);
- Wasserstein distances between the valid samples and the reference set of density (g/cm^3) and
  of the number of distinct elements (``scipy.stats.wasserstein_distance``);
- uniqueness: distinct structures among the valid samples / valid samples;
- novelty: valid samples that match no training structure / valid samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from hfmat.cif.structural import structural_validity
from hfmat.evaluation.composition import smact_valid
from hfmat.evaluation.fingerprints import cached_fingerprints, fingerprints
from hfmat.evaluation.magpie_scaler import scale_magpie
from hfmat.evaluation.novelty import bucket_keys, cached_bucket_keys, duplicates, training_matches
from hfmat.evaluation.parallel import pool_map
from hfmat.evaluation.reference import COV_CUTOFFS, canonical_dataset


def _item(sample: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "structural_valid": False,
        "compositional_valid": False,
        "valid": False,
        "reason": None,
        "formula": None,
        "density": None,
        "num_atoms": None,
        "num_elements": None,
    }
    if not isinstance(sample, Structure):
        row["reason"] = "no structure" if sample is None else str(sample)
        return row
    row["formula"] = sample.composition.reduced_formula
    row["num_atoms"] = len(sample)
    row["num_elements"] = len(sample.composition.elements)
    try:
        row["density"] = float(sample.density)
        ok, reason = structural_validity(sample)
    except Exception as err:  # noqa: BLE001 - a degenerate lattice must not stop the evaluation
        ok, reason = False, f"validity check failed: {type(err).__name__}: {err}"
    row["structural_valid"] = ok
    if not ok:
        row["reason"] = reason
    row["compositional_valid"] = smact_valid(sample.composition)
    if not row["compositional_valid"] and row["reason"] is None:
        row["reason"] = "composition fails the SMACT charge-neutrality / electronegativity test"
    row["valid"] = ok and row["compositional_valid"]
    return row


def coverage(
    gen_fps: Sequence[tuple],
    ref_fps: Sequence[tuple],
    struc_cutoff: float,
    comp_cutoff: float,
    num_generated: int | None = None,
) -> dict[str, Any]:
    """CDVAE's COV-R / COV-P from ``(structure_fp, composition_fp, error)`` triples."""
    gen = [(s, c) for s, c, _ in gen_fps if s is not None and c is not None]
    ref = [(s, c) for s, c, _ in ref_fps if s is not None and c is not None]
    num_generated = len(gen_fps) if num_generated is None else num_generated
    out: dict[str, Any] = {
        "struc_cutoff": struc_cutoff,
        "comp_cutoff": comp_cutoff,
        "n_generated_with_fingerprint": len(gen),
        "n_reference_with_fingerprint": len(ref),
        "cov_recall": None,
        "cov_precision": None,
    }
    if not gen or not ref:
        return out
    struc_d = cdist(np.stack([s for s, _ in gen]), np.stack([s for s, _ in ref]))
    comp_d = cdist(scale_magpie([c for _, c in gen]), scale_magpie([c for _, c in ref]))
    recall = np.logical_and(struc_d.min(axis=0) <= struc_cutoff, comp_d.min(axis=0) <= comp_cutoff)
    precision = np.logical_and(struc_d.min(axis=1) <= struc_cutoff, comp_d.min(axis=1) <= comp_cutoff)
    out["cov_recall"] = float(recall.mean())
    out["cov_precision"] = float(precision.sum() / num_generated)
    return out


def generation_metrics(
    generated: Sequence[Structure | str | None],
    reference_train: Sequence[Structure] | None = None,
    reference_test: Sequence[Structure] | None = None,
    *,
    dataset: str | None = None,
    cov_cutoffs: dict[str, float] | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    matcher: dict[str, Any] | None = None,
    fingerprint_cache: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics of a set of generated structures (None / an error string for a sample with none).

    ``reference_test`` is the set COV and the Wasserstein distances compare with (CDVAE: the test
    split); ``reference_train`` is the set novelty is measured against. ``dataset`` (mp_20, perov_5,
    carbon_24) picks CDVAE's COV thresholds, or pass ``cov_cutoffs={"struc": ..., "comp": ...}``;
    with neither, COV is not computed. ``n_samples`` draws that many valid samples (seeded) for the
    Wasserstein distances, as CDVAE does with 1,000; default all. ``matcher``: StructureMatcher
    settings for uniqueness / novelty (default pymatgen's). The reference fingerprints and the
    training set's primitive-cell keys are cached on disk (``fingerprint_cache``, default
    ``~/.cache/hfmat/fingerprints``). Rates are fractions; None = not computed.
    """
    generated = list(generated)
    items = pool_map(_item, generated, workers=workers, desc="validity", progress=progress)
    n = len(items)
    issues: list[dict] = []
    out: dict[str, Any] = {"task": "generation", "n_generated": n}
    if n == 0:
        issues.append({"index": None, "issue": "the generated set is empty"})
    for key in ("structural_valid", "compositional_valid", "valid"):
        out[key.replace("_valid", "_validity") if key != "valid" else "validity"] = (
            sum(r[key] for r in items) / n if n else None
        )
    valid_idx = [i for i, r in enumerate(items) if r["valid"]]
    out["n_valid"] = len(valid_idx)

    # Wasserstein distances: valid samples vs the reference set.
    out["wdist_density"] = out["wdist_num_elements"] = None
    if reference_test is not None and valid_idx:
        pick = valid_idx
        if n_samples is not None and len(valid_idx) > n_samples:
            pick = sorted(np.random.default_rng(seed).choice(valid_idx, n_samples, replace=False).tolist())
        ref = [s for s in reference_test if isinstance(s, Structure)]
        if ref:
            out["wdist_density"] = float(
                wasserstein_distance([items[i]["density"] for i in pick], [s.density for s in ref])
            )
            out["wdist_num_elements"] = float(
                wasserstein_distance(
                    [items[i]["num_elements"] for i in pick], [len(s.composition.elements) for s in ref]
                )
            )
        out["n_wdist_samples"] = len(pick)

    # COV
    cutoffs = cov_cutoffs or COV_CUTOFFS.get(canonical_dataset(dataset) or "")
    out["cov_recall"] = out["cov_precision"] = None
    if reference_test is not None and cutoffs is not None and n:
        gen_fps = fingerprints(generated, workers=workers, desc="fingerprints (generated)", progress=progress)
        ref_fps = cached_fingerprints(
            list(reference_test),
            cache_dir=fingerprint_cache,
            workers=workers,
            desc="fingerprints (reference)",
            progress=progress,
        )
        cov = coverage(gen_fps, ref_fps, cutoffs["struc"], cutoffs["comp"], num_generated=n)
        out.update(cov_recall=cov.pop("cov_recall"), cov_precision=cov.pop("cov_precision"), coverage=cov)
        for i, (_, _, err) in enumerate(gen_fps):
            if err is not None and isinstance(generated[i], Structure):
                items[i]["fingerprint_error"] = err
    elif reference_test is not None and cutoffs is None:
        issues.append(
            {
                "index": None,
                "issue": "COV not computed: name a dataset (mp_20, perov_5, carbon_24) or pass cov_cutoffs",
            }
        )

    # Uniqueness and novelty over the valid samples.
    out["uniqueness"] = out["novelty"] = out["unique_and_novel"] = None
    if valid_idx:
        valid = [generated[i] for i in valid_idx]
        keys = bucket_keys(valid, workers=workers, progress=progress)
        first = duplicates(valid, keys, matcher=matcher, workers=workers, progress=progress)
        for pos, i in enumerate(valid_idx):
            items[i]["duplicate_of"] = None if first[pos] == pos else valid_idx[first[pos]]
        unique = [f == p for p, f in enumerate(first)]
        out["uniqueness"] = sum(unique) / len(valid)
        if reference_train is not None:
            train = [s for s in reference_train if isinstance(s, Structure)]
            train_keys = cached_bucket_keys(
                train, cache_dir=fingerprint_cache, workers=workers, progress=progress
            )
            found = training_matches(
                valid, keys, train, train_keys, matcher=matcher, workers=workers, progress=progress
            )
            for pos, i in enumerate(valid_idx):
                items[i]["training_match"] = found[pos]
            novel = [f is None for f in found]
            out["novelty"] = sum(novel) / len(valid)
            out["unique_and_novel"] = sum(u and v for u, v in zip(unique, novel)) / len(valid)
    out["per_sample"] = items
    out["issues"] = issues
    return out

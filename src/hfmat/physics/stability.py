"""Stability of generated crystals: relax them, place them against a reference hull, count S.U.N.

For each structure: relax it with the potential (:func:`hfmat.physics.relax`), take its energy above
the reference hull (:mod:`hfmat.physics.hull`: the potential's hull over a reference set, **not** the
Materials Project's DFT hull), and ask whether the relaxed structure repeats an earlier one
(uniqueness) or a training structure (novelty), with hfmat's StructureMatcher helpers. As in
MatterGen, *stable* means E_hull <= 0 eV/atom, *metastable* E_hull <= 0.1 eV/atom, and the S.U.N.
rate is the fraction of all inputs (failed ones included) that are stable, unique and novel
(M.S.U.N.: metastable, unique and novel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from hfmat.physics.hull import NOTE, ReferenceHull
from hfmat.physics.potentials import Potential
from hfmat.physics.relaxation import RelaxResult, relax

STABLE = 0.0
METASTABLE = 0.1


def stability(
    structures: Sequence[Structure],
    hull: ReferenceHull,
    train: Sequence[Structure] | None = None,
    potential: str | Potential = "chgnet",
    results: Sequence[RelaxResult] | None = None,
    workers: int | None = None,
    progress: bool = True,
    **relax_options,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(summary, rows)``: per structure its relaxation, E_hull (eV/atom) and stable / metastable /
    unique / novel flags; the summary gives the rates over all inputs. ``results`` reuses
    relaxations already done (one per structure); ``train`` None skips novelty (every structure
    then counts as novel, and the summary says so). ``workers``: processes for the matcher."""
    from hfmat.evaluation.novelty import bucket_keys, duplicates, training_matches

    structures = list(structures)
    if results is None:
        results = relax(structures, potential, progress=progress, **relax_options)
    if len(results) != len(structures):
        raise ValueError(f"{len(results)} relaxation results for {len(structures)} structures")
    ok = [i for i, r in enumerate(results) if r.ok]
    relaxed = [results[i].structure for i in ok]
    keys = bucket_keys(relaxed, workers=workers, progress=False)
    first = duplicates(relaxed, keys, workers=workers, progress=False)
    unique = {ok[j] for j, f in enumerate(first) if f == j}
    if train is None:
        novel = set(ok)
    else:
        train = list(train)
        train_keys = bucket_keys(train, workers=workers, progress=False)
        found = training_matches(relaxed, keys, train, train_keys, workers=workers, progress=False)
        novel = {ok[j] for j, f in enumerate(found) if f is None}
    rows = []
    for i, r in enumerate(results):
        e_hull = None
        if r.ok:
            try:
                e_hull = hull.e_above_hull(r.structure.composition, r.energy_final)
            except ValueError:
                e_hull = None
        row = r.row() | {"e_above_hull": e_hull, "unique": i in unique, "novel": i in novel}
        row["stable"] = e_hull is not None and e_hull <= STABLE
        row["metastable"] = e_hull is not None and e_hull <= METASTABLE
        rows.append(row)
    return _summary(rows, results, hull, train is not None), rows


def _summary(rows, results, hull: ReferenceHull, with_train: bool) -> dict[str, Any]:
    n = len(rows)

    def rate(*flags: str) -> float | None:
        return None if n == 0 else sum(all(row[f] for f in flags) for row in rows) / n

    hulls = [row["e_above_hull"] for row in rows if row["e_above_hull"] is not None]
    rmsds = [r.rmsd for r in results if r.ok and r.rmsd is not None]
    return {
        "n": n,
        "relaxed": sum(r.ok for r in results),
        "converged": sum(r.converged for r in results),
        "stable_rate": rate("stable"),
        "metastable_rate": rate("metastable"),
        "unique_rate": rate("unique"),
        "novel_rate": rate("novel") if with_train else None,
        "sun_rate": rate("stable", "unique", "novel") if with_train else None,
        "msun_rate": rate("metastable", "unique", "novel") if with_train else None,
        "e_above_hull_mean": float(np.mean(hulls)) if hulls else None,
        "rmsd_mean": float(np.mean(rmsds)) if rmsds else None,
        "hull": f"{hull.potential}, {hull.num_reference} reference structures + elemental ground states",
        "note": NOTE,
    }


def plot_energies(rows: Sequence[dict[str, Any]], path) -> None:
    """Histograms of energy per atom before / after relaxation and of E_hull, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("energy_per_atom_initial", "before"), ("energy_per_atom_final", "after relaxation")):
        values = [row[key] for row in rows if row[key] is not None]
        left.hist(values, bins=30, alpha=0.6, label=label)
    left.set_xlabel("energy (eV/atom)")
    left.legend()
    right.hist([row["e_above_hull"] for row in rows if row["e_above_hull"] is not None], bins=30)
    right.axvline(METASTABLE, color="k", linestyle="--", linewidth=1)
    right.set_xlabel("E above the potential's reference hull (eV/atom)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

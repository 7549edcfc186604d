"""Relax many crystals at once, and single-point energies, with a universal ML potential.

:func:`relax` runs one ASE optimiser per structure (FIRE by default, on a ``FrechetCellFilter`` so
the cell relaxes too: CHGNet's ``StructOptimizer`` defaults), but steps them all together: at each
step the potential evaluates every unfinished cell in one batched call, each optimiser takes its
step from those forces, and a finished structure makes room for the next one in the queue. A
structure's trajectory is the one ASE would take alone; what changes is how many cells share one
call of the potential. The queue order is fixed, so the same call gives the same numbers.

A structure the potential cannot take (an element outside its training data, a disordered site, a
cell it cannot build a graph for, a non-finite energy) gets a result with ``error`` set; the others
go on.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Structure
from tqdm.auto import tqdm

from hfmat.physics.cellfilter import frechet_cell_filter
from hfmat.physics.potentials import Potential, Prediction, load_potential

#: ASE optimisers that take one energy/force evaluation per step (no line search).
OPTIMIZERS = ("FIRE", "BFGS", "LBFGS", "MDMin")
#: Closest allowed pair of sites (Å): CDVAE's structural-validity cutoff. A potential trained on
#: real crystals gives meaningless (often very low) energies for overlapping atoms.
MIN_DISTANCE = 0.5
#: Columns of :meth:`RelaxResult.row`, the CSV of ``hfmat relax``.
CSV_COLUMNS = (
    "formula",
    "num_atoms",
    "energy_per_atom_initial",
    "energy_per_atom_final",
    "max_force",
    "steps",
    "converged",
    "rmsd",
    "error",
)


@dataclass
class RelaxResult:
    """One structure's relaxation. Energies in eV/atom; ``max_force`` (eV/Å) is the largest force
    the optimiser saw at the end (atoms and, with the cell relaxed, the cell's stress term);
    ``rmsd`` is pymatgen's ``StructureMatcher.get_rms_dist`` between the input and the relaxed
    structure with the CSP tolerances (normalised by (V/n)^(1/3)), None if they no longer match."""

    structure: Structure | None
    energy_initial: float | None = None
    energy_final: float | None = None
    max_force: float | None = None
    steps: int = 0
    converged: bool = False
    rmsd: float | None = None
    error: str | None = None
    input: Structure | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        source = self.structure if self.structure is not None else self.input
        return {
            "formula": source.composition.reduced_formula if source is not None else "",
            "num_atoms": len(source) if source is not None else "",
            "energy_per_atom_initial": self.energy_initial,
            "energy_per_atom_final": self.energy_final,
            "max_force": self.max_force,
            "steps": self.steps,
            "converged": self.converged,
            "rmsd": self.rmsd,
            "error": self.error or "",
        }


@dataclass
class SinglePoint:
    """One structure's energy (eV/atom), largest atomic force (eV/Å) and stress (Voigt, eV/Å³)."""

    energy: float | None
    max_force: float | None = None
    stress: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None


def to_atoms(structure: Any) -> Atoms | str:
    """``structure`` as periodic ASE Atoms, or a message saying why it cannot be one."""
    if not isinstance(structure, Structure):
        return f"expected a pymatgen Structure, got {type(structure).__name__}"
    if len(structure) == 0:
        return "the structure has no sites"
    if not structure.is_ordered:
        return "the structure has partially occupied sites; a potential needs one element per site"
    if len(structure) > 1:
        distances = structure.distance_matrix + np.diag([np.inf] * len(structure))
        i, j = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[i, j] < MIN_DISTANCE:
            return (
                f"sites {i} and {j} are {distances[i, j]:.3g} Å apart (< {MIN_DISTANCE} Å, the structural "
                "validity cutoff): a potential's energy means nothing there"
            )
    numbers = [site.specie.Z for site in structure]
    return Atoms(numbers=numbers, positions=structure.cart_coords, cell=structure.lattice.matrix, pbc=True)


class _Job:
    """One structure under relaxation: its Atoms, the filter the optimiser moves, the optimiser."""

    def __init__(self, index: int, atoms: Atoms, species: list, optimizer: str, relax_cell: bool):
        from ase import optimize

        self.index, self.atoms, self.species, self.steps = index, atoms, species, 0
        self.energy_initial: float | None = None
        target = frechet_cell_filter(atoms) if relax_cell else atoms
        self.optimizer = getattr(optimize, optimizer)(target, logfile=None)

    def observe(self, prediction: Prediction) -> float:
        """Hand the potential's answer for the current positions to ASE; returns the force norm the
        optimiser converges on."""
        self.atoms.calc = SinglePointCalculator(
            self.atoms,
            energy=prediction.energy,
            free_energy=prediction.energy,
            forces=prediction.forces,
            stress=prediction.stress,
        )
        if self.energy_initial is None:
            self.energy_initial = prediction.energy / len(self.atoms)
        optimizable = self.optimizer.optimizable
        return float(optimizable.gradient_norm(optimizable.get_gradient()))

    def structure(self) -> Structure:
        """The current cell as a Structure with the input's species."""
        return Structure(self.atoms.cell.array, self.species, self.atoms.get_scaled_positions(wrap=True))


def relax(
    structures: Sequence[Structure],
    potential: str | Potential = "chgnet",
    fmax: float = 0.1,
    steps: int = 500,
    batch_size: int = 8,
    optimizer: str = "FIRE",
    relax_cell: bool = True,
    progress: bool = True,
) -> list[RelaxResult]:
    """Relax each structure until the largest force is below ``fmax`` (eV/Å) or ``steps`` optimiser
    steps are taken; ``batch_size`` cells share one call of the potential. One
    :class:`RelaxResult` per input, in order."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if batch_size < 1 or steps < 0 or not fmax > 0:
        raise ValueError(f"need batch_size >= 1, steps >= 0 and fmax > 0 (got {batch_size}, {steps}, {fmax})")
    pot = load_potential(potential)
    structures = list(structures)
    results: list[RelaxResult | None] = [None] * len(structures)
    queue: deque[tuple[int, Atoms, list]] = deque()
    for i, structure in enumerate(structures):
        atoms = to_atoms(structure)
        if isinstance(atoms, str):
            results[i] = RelaxResult(
                None, error=atoms, input=structure if isinstance(structure, Structure) else None
            )
        else:
            queue.append((i, atoms, structure.species))
    bar = tqdm(total=len(structures), desc=f"relax ({pot.name})", disable=not progress)
    bar.update(len(structures) - len(queue))
    active: list[_Job] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ASE's FutureWarnings about its optimiser API, once per step
        while queue or active:
            while queue and len(active) < batch_size:
                active.append(_Job(*queue.popleft(), optimizer=optimizer, relax_cell=relax_cell))
            predictions = pot.predict([job.atoms for job in active])
            still = []
            for job, prediction in zip(active, predictions):
                done = _advance(job, prediction, fmax, steps)
                if done is None:
                    still.append(job)
                    continue
                done.input = structures[job.index]
                results[job.index] = done
                bar.update(1)
            active = still
    bar.close()
    for result in results:
        if result.ok:
            result.rmsd = rms_distance(result.input, result.structure)
    return results


def _advance(job: _Job, prediction: Prediction | str, fmax: float, steps: int) -> RelaxResult | None:
    """Take one optimiser step; a finished job's result, or None to go on."""
    if isinstance(prediction, str):
        return RelaxResult(None, steps=job.steps, error=prediction)
    force = job.observe(prediction)
    converged = force < fmax
    if converged or job.steps >= steps:
        return RelaxResult(
            job.structure(),
            energy_initial=job.energy_initial,
            energy_final=prediction.energy / len(job.atoms),
            max_force=force,
            steps=job.steps,
            converged=converged,
        )
    job.optimizer.step()
    job.steps += 1
    return None


def rms_distance(a: Structure, b: Structure) -> float | None:
    """StructureMatcher's normalised RMS distance between ``a`` and ``b`` (CSP tolerances)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from hfmat.evaluation.matching import CSP_MATCHER

    rms = StructureMatcher(**CSP_MATCHER).get_rms_dist(a, b)
    return None if rms is None else float(rms[0])


def energies(
    structures: Sequence[Structure],
    potential: str | Potential = "chgnet",
    batch_size: int = 64,
    progress: bool = True,
) -> list[SinglePoint]:
    """Single-point energy (eV/atom), largest force and stress of each structure, in order."""
    pot = load_potential(potential)
    structures = list(structures)
    out: list[SinglePoint] = []
    bar = tqdm(total=len(structures), desc=f"energies ({pot.name})", disable=not progress)
    for start in range(0, len(structures), batch_size):
        chunk = [to_atoms(s) for s in structures[start : start + batch_size]]
        ready = [a for a in chunk if not isinstance(a, str)]
        answers = iter(pot.predict(ready))
        for atoms in chunk:
            answer = atoms if isinstance(atoms, str) else next(answers)
            if isinstance(answer, str):
                out.append(SinglePoint(None, error=answer))
            else:
                norm = float(np.linalg.norm(answer.forces, axis=1).max())
                out.append(SinglePoint(answer.energy / len(atoms), norm, answer.stress))
        bar.update(len(chunk))
    bar.close()
    return out

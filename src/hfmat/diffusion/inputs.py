"""Checks of what a user passes to the pipeline, done before any sampling starts."""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Composition

from hfmat.chemistry import atomic_number
from hfmat.composition import CompositionInputError, read_composition


class PipelineInputError(ValueError):
    """Bad input to :class:`hfmat.diffusion.CrystalDiffusionPipeline`; the message says which and why."""


def composition_atoms(
    composition: str | Composition, max_atoms: int, where: str = "composition"
) -> list[int]:
    """Atomic numbers of every atom of the cell a composition describes, in the composition's
    order (:func:`hfmat.composition.read_composition`: ``"SrTiO3"`` is 5 atoms, Sr, Ti, O, O, O)."""
    try:
        comp = read_composition(composition)
    except CompositionInputError as err:
        raise PipelineInputError(f"{where}: {err}") from None
    atoms = [atomic_number(species.symbol) for species, amount in comp.items() for _ in range(round(amount))]
    check_num_atoms(len(atoms), max_atoms, f"{where} {composition!r}")
    return atoms


def check_num_atoms(n, max_atoms: int, where: str = "num_atoms") -> int:
    if isinstance(n, bool) or int(n) != n:
        raise PipelineInputError(f"{where}: the number of atoms must be an integer, got {n!r}")
    if int(n) < 1:
        raise PipelineInputError(f"{where}: a crystal needs at least one atom, got {int(n)}")
    if int(n) > max_atoms:
        raise PipelineInputError(
            f"{where}: {int(n)} atoms is more than this model supports (max_atoms={max_atoms})"
        )
    return int(n)


def as_list(value) -> list:
    if isinstance(value, (str, Composition, int)) or not isinstance(value, Sequence):
        return [value]
    return list(value)

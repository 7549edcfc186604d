"""Checks of what a user passes to the pipeline, done before any sampling starts."""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Composition

from hfmat.chemistry import atomic_number


class PipelineInputError(ValueError):
    """Bad input to :class:`hfmat.diffusion.CrystalDiffusionPipeline`; the message says which and why."""


def composition_atoms(
    composition: str | Composition, max_atoms: int, where: str = "composition"
) -> list[int]:
    """Atomic numbers of every atom of the cell a composition describes.

    ``"SrTiO3"`` and ``"Sr1Ti1O3"`` both mean 5 atoms: one Sr, one Ti, three O (the formula is the
    cell's content, it is not reduced or multiplied). Amounts must be whole numbers.
    """
    if isinstance(composition, str):
        text = composition.strip()
        if not text:
            raise PipelineInputError(f"{where}: empty composition string")
        try:
            comp = Composition(text)
        except Exception as err:  # pymatgen raises ValueError/KeyError/CompositionError for bad formulas
            raise PipelineInputError(f"{where}: cannot read composition {composition!r}: {err}") from None
    elif isinstance(composition, Composition):
        comp = composition
    else:
        raise PipelineInputError(
            f"{where}: expected a formula string or pymatgen Composition, got {type(composition).__name__}"
        )
    atoms: list[int] = []
    for species, amount in comp.items():
        symbol = getattr(species, "symbol", str(species))
        try:
            z = atomic_number(symbol)
        except ValueError:
            raise PipelineInputError(f"{where}: unknown element {symbol!r} in {composition!r}") from None
        if amount < 0 or abs(amount - round(amount)) > 1e-8:
            raise PipelineInputError(
                f"{where}: {symbol} has amount {amount:g} in {composition!r}; give whole numbers of atoms in the cell"
            )
        atoms.extend([z] * int(round(amount)))
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

"""Reading a cell composition that a user gives: a formula string or a pymatgen ``Composition``,
whole numbers of known elements. The language model's prompts (:mod:`hfmat.lm.prompts`) and the
diffusion pipeline's inputs (:mod:`hfmat.diffusion.inputs`) both read compositions with it.

``"SrTiO3"`` and ``"Sr1Ti1O3"`` both mean one Sr, one Ti and three O: the formula is the cell's
content, neither reduced nor multiplied.
"""

from __future__ import annotations

from pymatgen.core import Composition

from hfmat.chemistry import ELEMENTS

__all__ = ["CompositionInputError", "read_composition"]

_ELEMENTS = frozenset(ELEMENTS)


class CompositionInputError(ValueError):
    """A composition that is empty, unparsable, names an unknown element or has a count that is not
    a positive whole number; the message says which. Callers re-raise it as their own error."""


def read_composition(composition: str | Composition) -> Composition:
    """The ``Composition`` of ``composition``, checked: at least one atom, every element one of the
    118 (``getattr(species, "symbol")``: an oxidation state is allowed), every count a whole number."""
    if isinstance(composition, str):
        text = composition.strip()
        if not text:
            raise CompositionInputError("empty composition")
        try:
            comp = Composition(text)
        except Exception as err:  # pymatgen raises ValueError or its own errors
            raise CompositionInputError(f"cannot parse composition {composition!r}: {err}") from None
    elif isinstance(composition, Composition):
        comp = composition
    else:
        raise CompositionInputError(
            f"composition must be a formula string or a pymatgen Composition, got {type(composition).__name__}"
        )
    unknown = [s for s in (getattr(sp, "symbol", str(sp)) for sp in comp) if s not in _ELEMENTS]
    if unknown:
        names = ", ".join(repr(s) for s in unknown)
        raise CompositionInputError(
            f"composition {composition!r}: unknown element{'s' if len(unknown) > 1 else ''} {names}"
        )
    for species, amount in comp.items():
        if amount <= 0 or abs(amount - round(amount)) > 1e-8:
            raise CompositionInputError(
                f"composition {composition!r}: the count of {species} is {amount:g}; counts must be "
                "positive whole numbers of atoms in the cell"
            )
    if len(comp) == 0:
        raise CompositionInputError(
            f"composition {composition!r} has no atoms: a crystal needs at least one atom"
        )
    return comp

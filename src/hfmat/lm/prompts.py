"""Generation prompts: the first line(s) of a canonical CIF (docs/cif_format.md).

A composition prompt is the data_ line in pymatgen's formula order with every count written
(``SrTiO3`` -> ``data_Sr1Ti1O3\\n``), optionally followed by the space-group line. An
unconditional prompt is just ``data_``. Bad input raises :class:`PromptError` before anything
is generated.
"""

from __future__ import annotations

from hfmat.chemistry import space_group_number, space_group_symbols
from hfmat.composition import CompositionInputError, read_composition

__all__ = ["PromptError", "cell_composition", "composition_prompt", "unconditional_prompt"]


class PromptError(ValueError):
    """A composition, formula-unit count or space group that cannot be turned into a prompt."""


def cell_composition(composition, formula_units: int | None = None):
    """The cell composition (pymatgen ``Composition``) for a formula and an optional Z.

    ``composition`` is a formula string (``"SrTiO3"``, ``"Sr1Ti1O3"``, ``"Ti2O4"``) or a pymatgen
    Composition. Without ``formula_units`` the formula's counts are the cell's; with it, the
    reduced formula is multiplied by ``formula_units``.
    """
    if isinstance(composition, str) and composition.strip().startswith("data_"):
        composition = composition.strip()[len("data_") :]
    try:
        comp = read_composition(composition).remove_charges()
    except CompositionInputError as err:
        raise PromptError(str(err)) from None
    if formula_units is not None:
        if int(formula_units) != formula_units or int(formula_units) < 1:
            raise PromptError(f"formula units must be a positive whole number, got {formula_units!r}")
        reduced, _ = comp.get_reduced_composition_and_factor()
        comp = reduced * int(formula_units)
    return comp


def _space_group_symbol(spacegroup) -> str:
    if isinstance(spacegroup, int) or (isinstance(spacegroup, str) and spacegroup.strip().isdigit()):
        number = int(spacegroup)
        if not 1 <= number <= 230:
            raise PromptError(f"space-group number {number} is outside 1..230")
        return space_group_symbols()[number - 1]
    symbol = str(spacegroup).strip()
    try:
        space_group_number(symbol)
    except ValueError as err:
        raise PromptError(str(err)) from None
    return symbol


def composition_prompt(composition, spacegroup=None, formula_units: int | None = None) -> str:
    """``data_<formula>\\n`` (and ``_symmetry_space_group_name_H-M <sg>\\n`` with a space group)."""
    comp = cell_composition(composition, formula_units)
    formula = "".join(f"{el}{int(round(n))}" for el, n in ((str(e), a) for e, a in _formula_order(comp)))
    text = f"data_{formula}\n"
    if spacegroup is not None:
        text += f"_symmetry_space_group_name_H-M {_space_group_symbol(spacegroup)}\n"
    return text


def unconditional_prompt() -> str:
    return "data_"


def _formula_order(comp):
    """(element, amount) pairs in pymatgen's formula order (``Composition.formula``)."""
    order = [token.rstrip("0123456789.") for token in comp.formula.split()]
    amounts = {str(el): amt for el, amt in comp.items()}
    return [(el, amounts[el]) for el in order]

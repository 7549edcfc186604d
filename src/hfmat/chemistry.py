"""Element and space-group tables shared by every other part of hfmat.

Space-group symbols are the short Hermann-Mauguin symbols of the standard setting, exactly as
pymatgen writes them in ``_symmetry_space_group_name_H-M`` (spglib's ``international_short``):
``Pm-3m``, ``P4_2/mnm``, ``Fd-3m``, ``P2_1/c``.
"""

from __future__ import annotations

from functools import lru_cache

import spglib
from pymatgen.core.periodic_table import Element

#: Element symbols H .. Og in order of atomic number (index 0 is H).
ELEMENTS: tuple[str, ...] = tuple(Element.from_Z(z).symbol for z in range(1, 119))
_Z = {symbol: z for z, symbol in enumerate(ELEMENTS, start=1)}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol; ValueError naming the symbol if it is not one."""
    try:
        return _Z[symbol]
    except KeyError:
        raise ValueError(f"unknown element symbol {symbol!r}") from None


def element_symbol(z: int) -> str:
    """Element symbol for an atomic number 1..118."""
    if not 1 <= int(z) <= len(ELEMENTS):
        raise ValueError(f"atomic number {z} is outside 1..{len(ELEMENTS)}")
    return ELEMENTS[int(z) - 1]


@lru_cache(maxsize=1)
def _space_groups() -> tuple[str, ...]:
    first: dict[int, str] = {}
    for hall in range(1, 531):
        sg = spglib.get_spacegroup_type(hall)
        first.setdefault(sg.number, sg.international_short)
    return tuple(first[n] for n in range(1, 231))


def space_group_symbols() -> tuple[str, ...]:
    """The 230 space-group symbols, index 0 is group 1 (P1)."""
    return _space_groups()


def space_group_symbol(number: int) -> str:
    if not 1 <= int(number) <= 230:
        raise ValueError(f"space-group number {number} is outside 1..230")
    return _space_groups()[int(number) - 1]


def space_group_number(symbol: str) -> int:
    """Number 1..230 of a space-group symbol as pymatgen writes it; ValueError otherwise."""
    try:
        return _space_groups().index(symbol) + 1
    except ValueError:
        raise ValueError(
            f"unknown space-group symbol {symbol!r} (expected a short Hermann-Mauguin symbol "
            "as pymatgen writes it, e.g. 'Pm-3m', 'P4_2/mnm', 'P2_1/c')"
        ) from None

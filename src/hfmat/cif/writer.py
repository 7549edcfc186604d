"""Structure -> canonical CIF text (docs/cif_format.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from hfmat.chemistry import space_group_symbol
from hfmat.cif.canonical import canonical_rows
from hfmat.cif.errors import CifError
from hfmat.cif.tags import ATOM_TYPE_LOOP_TAGS, HEADER_TAGS, LOOPS_PREAMBLE


def _num(x: float, decimals: int) -> str:
    text = f"{float(x):.{decimals}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def _element_props(symbol: str) -> tuple[float, float, float]:
    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = (el.X, el.atomic_radius, el.average_ionic_radius)
    return tuple(0.0 if v is None or not math.isfinite(float(v)) else float(v) for v in values)


#: The tolerances tried in turn, as fractions of ``symprec``.
SYMPREC_LADDER = (1.0, 0.1, 0.01)


def round_trip_matcher():
    """The matcher a written text must pass against its input (the CSP benchmark's settings)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)


def _symmetrize(structure: Structure, symprec: float):
    try:
        refined = SpacegroupAnalyzer(structure, symprec=symprec).get_refined_structure()
        sga = SpacegroupAnalyzer(refined, symprec=symprec)
        symmetrized = sga.get_symmetrized_structure()
        number = int(sga.get_space_group_number())
    except Exception as err:  # spglib failures surface as several types
        raise CifError(f"space-group analysis failed at symprec={symprec}: {err}") from err
    return symmetrized, number


def structure_to_cif(
    structure: Structure, symprec: float = 0.1, decimals: int = 4, atom_props: bool = False
) -> str:
    """The canonical CIF text of ``structure`` (see docs/cif_format.md).

    The structure is refined to the conventional standard cell of the space group spglib finds
    at ``symprec``; only symmetry-distinct sites are written, with their multiplicities. When
    the text read back does not match ``structure`` (``round_trip_matcher``), the next, tighter
    tolerance of ``SYMPREC_LADDER`` is tried (also when spglib finds no group at a tolerance);
    then the input's own (Niggli-reduced) cell in P1; when nothing matches, the text at the
    tightest tolerance is kept.
    """
    from hfmat.cif.reader import cif_to_structure

    _check_writable(structure, decimals)
    structure = structure.copy()
    structure.remove_oxidation_states()
    matcher = round_trip_matcher()

    def matches(text: str) -> bool:
        try:
            return bool(matcher.fit(structure, cif_to_structure(text)))
        except CifError:
            return False

    text = None  # the text at the tightest tolerance where spglib found a group
    for factor in SYMPREC_LADDER:
        try:
            text = _render(structure, symprec * factor, int(decimals), atom_props)
        except CifError:  # spglib finds no group at this tolerance (a distorted cell): go on
            continue
        if matches(text):
            return text
    as_p1 = _render_p1(structure, int(decimals), atom_props)
    return as_p1 if text is None or matches(as_p1) else text


def _check_writable(structure, decimals) -> None:
    if not isinstance(structure, Structure):
        raise CifError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if len(structure) == 0:
        raise CifError("structure has no sites")
    if not structure.is_ordered:
        raise CifError("structure is disordered (partial occupancies); only ordered ones are written")
    if not 0 <= int(decimals) <= 10:
        raise CifError(f"decimals={decimals} is outside 0..10")


def _formula_order(comp) -> tuple[list[str], list[str], dict[str, int]]:
    order = comp.formula.split()
    elements = ["".join(c for c in token if c.isalpha()) for token in order]
    return order, elements, {el: i for i, el in enumerate(elements)}


def _render(structure: Structure, symprec: float, d: int, atom_props: bool) -> str:
    symmetrized, number = _symmetrize(structure, symprec)
    _, _, rank = _formula_order(symmetrized.composition)
    orbits = [
        (rank[sites[0].specie.symbol], sites[0].specie.symbol, np.array([site.frac_coords for site in sites]))
        for sites in symmetrized.equivalent_sites
    ]
    return _text(symmetrized.lattice, symmetrized.composition, number, orbits, d, atom_props)


def _render_p1(structure: Structure, d: int, atom_props: bool) -> str:
    """The input's own cell, Niggli-reduced, written in P1 (every site its own row)."""
    try:
        reduced = structure.get_reduced_structure()
    except Exception as err:
        raise CifError(f"Niggli reduction failed: {err}") from err
    _, _, rank = _formula_order(reduced.composition)
    orbits = [(rank[site.specie.symbol], site.specie.symbol, site.frac_coords[None]) for site in reduced]
    return _text(reduced.lattice, reduced.composition, 1, orbits, d, atom_props)


def _text(lat, comp, number: int, orbits, d: int, atom_props: bool) -> str:
    order, elements, _ = _formula_order(comp)
    _, z = comp.get_reduced_composition_and_factor()
    rows = canonical_rows(number, orbits, d)
    cell = [_num(v, d) for v in (lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma)]
    # the volume of the cell as written, so that reading and writing again gives the same text
    volume = Lattice.from_parameters(*map(float, cell)).volume
    header = (
        space_group_symbol(number),
        *cell,
        number,
        comp.reduced_formula,
        f"'{comp.formula}'",
        _num(volume, d),
        int(round(z)),
    )
    lines = ["data_" + "".join(order)]
    lines += [f"{tag} {value}" for tag, value in zip(HEADER_TAGS, header, strict=True)]
    if atom_props:
        lines += ["loop_", *ATOM_TYPE_LOOP_TAGS]
        for el in elements:
            lines.append(" ".join([el, *(_num(v, d) for v in _element_props(el))]))
    lines += LOOPS_PREAMBLE
    for i, (symbol, mult, coords) in enumerate(rows):
        lines.append(f"{symbol} {symbol}{i} {mult} {' '.join(coords)} 1")
    return "\n".join(lines) + "\n"

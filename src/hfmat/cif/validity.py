"""Validity checks of a CIF text (CrystaLLM's criteria plus cell sanity and structural validity).

``check_validity(text)`` never raises on bad text: a text that cannot be read gives a report
with ``valid=False`` whose ``parse`` check holds the CifError message. The checks run in a worker
process under a time limit (hfmat.cif.timelimit: spglib and CrystalNN cannot be interrupted, and a
crash there must not end the caller); a check stopped by the limit, or a worker that died, gives
such a report too (``parse`` names what happened). ``validity_report`` is the same check in this
process, with no limit.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition, Element, Structure

from hfmat.cif.errors import CifError
from hfmat.cif.reader import (
    _blocks,
    _field,
    _is_canonical,
    _pick,
    _space_group,
    expand,
    parse_canonical,
    read_structure,
)
from hfmat.cif.sanity import check_structure
from hfmat.cif.structural import structural_validity

#: A bond passes when expected * (1 - BOND_TOLERANCE) < length < expected * (1 + BOND_TOLERANCE).
BOND_TOLERANCE = 0.32
#: A bond with hydrogen passes when length < expected * H_FACTOR.
H_FACTOR = 2.5
#: Electronegativity difference from which a bond is taken as ionic.
IONIC_DIFFERENCE = 1.7
#: The fraction of reasonable bonds needed to pass (CrystaLLM: all of them).
BOND_PASS_FRACTION = 1.0
SYMPREC = 0.1
#: Largest element count read in a formula field (a cell holds at most hfmat.cif.sanity.MAX_SITES).
MAX_FORMULA_COUNT = 1.0e6
LENGTH_RANGE = (0.5, 1000.0)
ANGLE_RANGE = (10.0, 170.0)

#: Check modes. "subgroup" (default, any CIF): a stated space group passes when the structure has
#: it (a subgroup of the group spglib finds; P1 always), the data_ formula is compared reduced.
#: "strict" (generated canonical CIFs, CrystaLLM's space-group check): the stated group must be
#: the group found and a data_ formula with every count written must be the cell's exactly.
MODES = ("subgroup", "strict")

CHECKS = (
    "parse",
    "formula_consistency",
    "site_multiplicity",
    "bond_lengths",
    "space_group",
    "cell_sanity",
    "structural",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str


@dataclass
class ValidityReport:
    """Per-check results, in ``CHECKS`` order; ``structure`` is the parsed Structure, if any;
    ``mode`` is the space-group check's mode (``MODES``)."""

    checks: list[CheckResult] = field(default_factory=list)
    structure: Structure | None = None
    bond_fraction: float | None = None
    #: A soft bond_fraction (:func:`bond_lengths`): 1.0 exactly when every bond passes.
    bond_score: float | None = None
    mode: str = "subgroup"

    @property
    def valid(self) -> bool:
        return len(self.checks) == len(CHECKS) and all(c.passed for c in self.checks)

    def __getitem__(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        """The verdict, the mode and every check, as JSON-ready types (no structure)."""
        return {
            "valid": self.valid,
            "mode": self.mode,
            "bond_fraction": self.bond_fraction,
            "bond_score": self.bond_score,
            "checks": [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in self.checks],
        }

    def __str__(self) -> str:
        lines = [f"valid: {self.valid} (space-group check: {self.mode} mode)"]
        lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}" for c in self.checks]
        return "\n".join(lines)


def _composition(text: str | None, what: str) -> Composition:
    if text is None:
        raise CifError(f"missing {what}")
    try:
        comp = Composition(text.strip().strip("'\""))
    except Exception:
        raise CifError(f"{what} {text!r} is not a formula") from None
    amounts = list(comp.values())
    if not all(math.isfinite(a) and 0 <= a <= MAX_FORMULA_COUNT for a in amounts):
        raise CifError(f"{what} {text!r} has a count outside [0, {MAX_FORMULA_COUNT:g}]")
    if comp.num_atoms <= 0:
        raise CifError(f"{what} {text!r} holds no atoms")
    return comp


def _same(a: Composition, b: Composition) -> bool:
    return a.almost_equals(b, rtol=0, atol=1e-6)


_FULL_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d+)+$")


def formula_consistency(
    data_name: str, formula_sum, formula_structural, z, exact: bool = True
) -> CheckResult:
    """data_ formula, _chemical_formula_sum, _chemical_formula_structural (and Z) agree. With
    ``exact`` (strict mode) a data_ name with every count written (``Ti2O4``, the canonical form)
    must equal the sum exactly; otherwise, and for any other data_ name, the data_ name is
    compared reduced (pymatgen writes the reduced formula: ``data_Zn3N2`` for ``'Zn12 N8'``)."""
    name = "formula_consistency"
    try:
        data = _composition(re.sub(r"^data_", "", data_name), "data_ formula")
        total = _composition(formula_sum, "_chemical_formula_sum")
        structural = _composition(formula_structural, "_chemical_formula_structural")
    except CifError as err:
        return CheckResult(name, False, str(err))
    if exact and _FULL_FORMULA.match(re.sub(r"^data_", "", data_name)) and not _same(data, total):
        return CheckResult(name, False, f"data_ {data.formula!r} != _chemical_formula_sum {total.formula!r}")
    if data.reduced_formula != total.reduced_formula:
        return CheckResult(
            name, False, f"data_ {data.reduced_formula} != _chemical_formula_sum {total.reduced_formula}"
        )
    if structural.reduced_formula != total.reduced_formula:
        return CheckResult(
            name,
            False,
            f"_chemical_formula_structural {structural.reduced_formula} != _chemical_formula_sum {total.reduced_formula}",
        )
    if z is not None:
        if not _same(total, structural.reduced_composition * z):
            return CheckResult(
                name, False, f"_cell_formula_units_Z {z} x {structural.reduced_formula} != {total.formula}"
            )
    return CheckResult(
        name, True, f"{total.formula} (reduced {total.reduced_formula}) in every formula field"
    )


def site_multiplicity(parsed, sizes: list[int] | None, structure: Structure, formula_sum) -> CheckResult:
    """Stated multiplicities sum to _chemical_formula_sum per element, and each equals the orbit
    size found on expansion (canonical texts); otherwise the expanded cell matches the sum."""
    name = "site_multiplicity"
    try:
        total = _composition(formula_sum, "_chemical_formula_sum")
    except CifError as err:
        return CheckResult(name, False, str(err))
    if parsed is not None and all(s.multiplicity is not None for s in parsed.sites):
        counts: dict[str, int] = {}
        for s in parsed.sites:
            counts[s.element] = counts.get(s.element, 0) + s.multiplicity
        stated = Composition(counts)
        if not _same(stated, total):
            return CheckResult(
                name,
                False,
                f"multiplicities sum to {stated.formula}, _chemical_formula_sum is {total.formula}",
            )
        for s, size in zip(parsed.sites, sizes or [], strict=False):
            if size != s.multiplicity:
                return CheckResult(
                    name,
                    False,
                    f"site {s.label} states multiplicity {s.multiplicity} but its orbit in group "
                    f"{parsed.space_group_number} has {size} sites",
                )
        return CheckResult(name, True, f"{len(parsed.sites)} sites, multiplicities sum to {total.formula}")
    cell = structure.composition.element_composition  # K+ and K are one element to the sum
    if not _same(cell, total.element_composition):
        return CheckResult(
            name, False, f"expanded cell is {cell.formula}, _chemical_formula_sum is {total.formula}"
        )
    return CheckResult(name, True, f"expanded cell is {total.formula}")


def _expected_length(a: Element, b: Element) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xa, xb = a.X, b.X
        if not (math.isfinite(xa) and math.isfinite(xb)):
            return None
        if abs(xa - xb) >= IONIC_DIFFERENCE:
            cation, anion = (a, b) if xa < xb else (b, a)
            r1, r2 = cation.average_cationic_radius, anion.average_anionic_radius
        else:
            r1, r2 = a.atomic_radius, b.atomic_radius
    if r1 is None or r2 is None or float(r1) + float(r2) <= 0:
        return None
    return float(r1) + float(r2)


def bond_lengths(
    structure: Structure, weights: dict[int, int] | None = None
) -> tuple[CheckResult, float | None, float | None]:
    """CrystaLLM's bond-length reasonableness: the fraction of CrystalNN bonds whose length is
    within BOND_TOLERANCE of the expected one must be at least BOND_PASS_FRACTION. ``weights``
    (site index -> orbit size) lets symmetry-equivalent sites be counted once.

    Returns the check, that fraction and a soft score: the weighted mean over bonds of 1 for a
    bond that passes, falling linearly to 0 as its length leaves the tolerance band by one more
    tolerance (a reward can see a bond come closer before it passes; 1.0 when all pass)."""
    from pymatgen.analysis.local_env import CrystalNN

    name = "bond_lengths"
    nn = CrystalNN()
    good = total = soft = 0.0
    worst = None
    indices = weights or {i: 1 for i in range(len(structure))}
    for i, weight in indices.items():
        site = structure[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                neighbours = nn.get_nn_info(structure, i)
            except Exception as err:
                return (
                    CheckResult(name, False, f"CrystalNN failed at site {i}: {type(err).__name__}: {err}"),
                    None,
                    None,
                )
        for info in neighbours:
            if info["site_index"] == i:  # the site's own image in another cell: skipped, as CrystaLLM does
                continue
            other = info["site"]
            expected = _expected_length(site.specie, other.specie)
            if expected is None:
                continue
            # the Cartesian distance to this neighbour image, not the minimum-image distance
            ratio = float(np.linalg.norm(other.coords - site.coords)) / expected
            if "H" in (site.specie.symbol, other.specie.symbol):
                ok = ratio < H_FACTOR
                excess = (ratio - H_FACTOR) / (H_FACTOR * BOND_TOLERANCE)
            else:
                ok = 1 - BOND_TOLERANCE < ratio < 1 + BOND_TOLERANCE
                excess = (abs(ratio - 1) - BOND_TOLERANCE) / BOND_TOLERANCE
            total += weight
            good += weight * ok
            soft += weight * (1.0 if ok else min(max(1.0 - excess, 0.0), 1.0))
            if not ok and (worst is None or abs(ratio - 1) > abs(worst[0] - 1)):
                worst = (ratio, site.specie.symbol, other.specie.symbol)
    if total == 0:
        return CheckResult(name, False, "no bonds with a known expected length"), None, None
    fraction = good / total
    passed = fraction >= BOND_PASS_FRACTION - 1e-12
    reason = f"{fraction:.3f} of bonds reasonable"
    if worst is not None:
        reason += f"; worst {worst[1]}-{worst[2]} at {worst[0]:.2f} x expected"
    return CheckResult(name, passed, reason), fraction, soft / total


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def space_group(structure: Structure, stated: int | None, mode: str = "subgroup") -> CheckResult:
    """The stated group against the one spglib finds at SYMPREC (or, for a text the writer had
    to write at a tighter tolerance, at a tolerance of SYMPREC_LADDER).

    ``mode="subgroup"`` (the default): the stated group passes when it equals the group found or
    is one of its subgroups (``hfmat.cif.symmetry.is_subgroup``), so a plain P1 CIF always passes
    and only a group the structure does not have fails. ``mode="strict"``: CrystaLLM's check, the
    stated group must be the group found (a P1 CIF of a cubic crystal fails); the check for
    generated canonical CIFs, where stating the full symmetry is the point."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from hfmat.cif.symmetry import is_subgroup
    from hfmat.cif.writer import SYMPREC_LADDER

    name = "space_group"
    _check_mode(mode)
    if stated is None:
        return CheckResult(name, False, "no space group stated")
    found = []
    for factor in SYMPREC_LADDER:
        symprec = SYMPREC * factor
        try:
            number = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
        except Exception as err:
            return CheckResult(
                name, False, f"spglib failed at symprec {symprec:g}: {type(err).__name__}: {err}"
            )
        if number == stated:
            return CheckResult(name, True, f"spglib finds the stated group {stated} at symprec {symprec:g}")
        if mode == "subgroup" and is_subgroup(stated, number):
            return CheckResult(
                name,
                True,
                f"stated group {stated} is a subgroup of group {number} that spglib finds at "
                f"symprec {symprec:g} ({mode} mode)",
            )
        found.append(f"{number} at symprec {symprec:g}")
    why = (
        "subgroup mode: it is a subgroup of none of these, so the structure does not have it"
        if mode == "subgroup"
        else "strict mode: the stated group must be the one found"
    )
    return CheckResult(name, False, f"stated group {stated}, spglib finds " + ", ".join(found) + f" ({why})")


def cell_sanity(lengths, angles) -> CheckResult:
    name = "cell_sanity"
    lo, hi = LENGTH_RANGE
    for k, v in zip("abc", lengths, strict=True):
        if not lo <= v <= hi:
            return CheckResult(name, False, f"cell length {k} = {v:g} A is outside [{lo}, {hi}]")
    lo, hi = ANGLE_RANGE
    for k, v in zip(("alpha", "beta", "gamma"), angles, strict=True):
        if not lo <= v <= hi:
            return CheckResult(name, False, f"cell angle {k} = {v:g} deg is outside [{lo}, {hi}]")
    return CheckResult(name, True, "cell lengths and angles in range")


def _stated_group(block) -> int | None:
    """The stated space group of a non-canonical CIF; a symbol in another setting (``P 1 21/n 1``)
    is looked up in pymatgen's tables, as the reader (pymatgen) did to read the file. CifError for
    a symbol in no table."""
    try:
        return _space_group(block)[0]
    except CifError as err:
        from pymatgen.symmetry.groups import SpaceGroup

        symbol = str(_field(block, "_symmetry_space_group_name_H-M", required=False)).strip("'\" ")
        try:
            return SpaceGroup(symbol).int_number
        except Exception:  # noqa: BLE001 - a symbol in no table: the reader's error stands
            raise err from None


def _guarded(name: str, check, *args) -> CheckResult:
    """``check(*args)``, or a failed CheckResult naming what it raised (check_validity never raises)."""
    try:
        return check(*args)
    except Exception as err:  # noqa: BLE001
        return CheckResult(name, False, f"check failed: {type(err).__name__}: {err}")


def check_validity(text: str, mode: str = "subgroup", *, time_limit: float | None = None) -> ValidityReport:
    """Every check of docs/cif_format.md on ``text``; never raises on bad text (a ValueError for an
    unknown ``mode``). ``mode`` is the space-group check's (``space_group``): "subgroup" for any
    CIF, "strict" (CrystaLLM's) for generated canonical CIFs. The checks run in a worker process
    stopped after ``time_limit`` seconds (default: $HFMAT_CIF_TIME_LIMIT, else 30; 0: in this
    process, no limit); a stopped check gives an invalid report whose ``parse`` check says so."""
    from hfmat.cif.timelimit import run_limited

    _check_mode(mode)
    try:
        return run_limited("check_validity", "checking the CIF", text, mode, time_limit_s=time_limit)
    except CifError as err:
        report = ValidityReport(mode=mode)
        report.checks.append(CheckResult("parse", False, str(err)))
        return report


def validity_report(text: str, mode: str = "subgroup") -> ValidityReport:
    """check_validity in this process, with no time limit (what the worker runs)."""
    report = ValidityReport(mode=_check_mode(mode))
    try:
        blocks = _blocks(text)
        name, block = _pick(blocks)
        which = f" of data_{name} (block {list(dict(blocks)).index(name) + 1} of {len(blocks)})"
        which = which if len(blocks) > 1 else ""
        parsed, sizes, weights = None, None, None
        if _is_canonical(block):
            parsed = parse_canonical(text)
            structure, sizes = expand(parsed)
            check_structure(structure)  # as the reader does: no degenerate cell reaches spglib
            stated = parsed.space_group_number
            weights, start = {}, 0
            for size in sizes:
                weights[start] = size
                start += size
            lengths, angles = parsed.lengths, parsed.angles
        else:
            structure = read_structure(text)
            stated = _stated_group(block)
            lengths, angles = structure.lattice.abc, structure.lattice.angles
        formula_sum = _field(block, "_chemical_formula_sum", required=False)
        formula_structural = _field(block, "_chemical_formula_structural", required=False)
        z_text = _field(block, "_cell_formula_units_Z", required=False)
        z = int(z_text) if z_text is not None and z_text.isdigit() else None
    except CifError as err:
        report.checks.append(CheckResult("parse", False, str(err)))
        return report
    except Exception as err:  # a last guard: check_validity never raises
        report.checks.append(CheckResult("parse", False, f"{type(err).__name__}: {err}"))
        return report
    report.structure = structure
    report.checks.append(CheckResult("parse", True, f"{len(structure)} sites{which}"))
    report.checks.append(
        _guarded(
            "formula_consistency",
            lambda: formula_consistency(name, formula_sum, formula_structural, z, exact=mode == "strict"),
        )
    )
    report.checks.append(
        _guarded("site_multiplicity", site_multiplicity, parsed, sizes, structure, formula_sum)
    )
    ok, reason = structural_validity(structure)
    if ok:
        bonds = _guarded("bond_lengths", lambda: bond_lengths(structure, weights))
        if isinstance(bonds, tuple):
            bonds, report.bond_fraction, report.bond_score = bonds
    else:
        bonds = CheckResult("bond_lengths", False, f"not computed: {reason}")
    report.checks.append(bonds)
    report.checks.append(_guarded("space_group", space_group, structure, stated, mode))
    report.checks.append(_guarded("cell_sanity", cell_sanity, lengths, angles))
    report.checks.append(CheckResult("structural", ok, reason))
    return report

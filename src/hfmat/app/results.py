"""What the app shows for each structure: the summary row (formula, space group, lattice
parameters, density, validity), the validity checks one by one, and the files to download
(a standard P1 CIF per structure, ``hfmat.cif.export``, and a zip of them all)."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

#: Columns of the results table, in order (the physics columns only with the physics extra).
COLUMNS = [
    "#",
    "model",
    "formula",
    "space group",
    "a (Å)",
    "b (Å)",
    "c (Å)",
    "α (°)",
    "β (°)",
    "γ (°)",
    "density (g/cm³)",
    "valid",
    "failed checks",
]
PHYSICS_COLUMNS = ["energy (eV/atom)", "E_hull (eV/atom)"]
CHECK_COLUMNS = ["check", "result", "detail"]


@dataclass
class Result:
    """One structure the app shows: where it came from, the structure (None when a language-model
    sample does not parse), its validity report and, with the physics extra, its energies."""

    model: str
    index: int
    structure: object | None
    report: object  # hfmat.cif.ValidityReport
    text: str | None = None  # the raw text a language model wrote
    energy: float | None = None
    e_hull: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return bool(self.report.valid)

    @property
    def formula(self) -> str:
        if self.structure is None:
            return "(does not parse)"
        return self.structure.composition.formula.replace(" ", "")

    @property
    def label(self) -> str:
        """What the sample menu shows: ``#0 Sr1Ti1O3 (valid)``."""
        return f"#{self.index} {self.formula} ({'valid' if self.valid else 'invalid'})"

    @property
    def stem(self) -> str:
        """The file name without suffix, as ``hfmat generate``/``diffuse`` name theirs."""
        return f"{self.index:04d}_{_safe(self.formula)}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "structure"


def validity_of(structure):
    """The validity report of a structure that no CIF text came with (a diffusion sample, an
    uploaded file already read): every check of ``hfmat.cif.check_validity`` on its canonical CIF
    (subgroup mode). A structure that has no canonical CIF (two atoms on one point) fails
    ``parse`` with the reason."""
    from hfmat.cif import CifError, check_validity, structure_to_cif
    from hfmat.cif.validity import CheckResult, ValidityReport

    try:
        text = structure_to_cif(structure)
    except (CifError, ValueError) as err:
        report = ValidityReport()
        report.checks.append(CheckResult("parse", False, f"no canonical CIF: {err}"))
        report.structure = structure
        return report
    report = check_validity(text)
    report.structure = structure
    return report


def space_group(structure, symprec: float = 0.1) -> str:
    """``Pm-3m (221)``, as spglib finds it at ``symprec``; ``?`` when spglib fails on the cell."""
    try:
        symbol, number = structure.get_space_group_info(symprec=symprec)
    except Exception:  # noqa: BLE001 - spglib fails on degenerate cells: the table says so
        return "?"
    return f"{symbol} ({number})"


def summary_row(result: Result, physics: bool = False) -> list:
    """The results-table row of ``result`` (:data:`COLUMNS`, then :data:`PHYSICS_COLUMNS`)."""
    failed = "; ".join(f"{c.name}: {c.reason}" for c in result.report.failed())
    s = result.structure
    if s is None:
        row = [result.index, result.model, result.formula, "", *[None] * 7, "no", failed]
    else:
        a, b, c = s.lattice.abc
        alpha, beta, gamma = s.lattice.angles
        row = [
            result.index,
            result.model,
            result.formula,
            space_group(s),
            *(round(float(x), 3) for x in (a, b, c, alpha, beta, gamma)),
            round(float(s.density), 3),
            "yes" if result.valid else "no",
            failed,
        ]
    if physics:
        row += [_round(result.energy), _round(result.e_hull)]
    return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def check_rows(report) -> list[list[str]]:
    """The validity checks of ``report`` one by one (:data:`CHECK_COLUMNS`)."""
    return [[c.name, "pass" if c.passed else "FAIL", c.reason] for c in report.checks]


def write_cif(result: Result, folder: Path) -> Path | None:
    """``result``'s structure as a standard P1 CIF in ``folder`` (None when there is no structure)."""
    from hfmat.cif.export import structure_to_standard_cif

    if result.structure is None:
        return None
    path = Path(folder) / f"{_safe(result.model)}_{result.stem}.cif"
    path.write_text(structure_to_standard_cif(result.structure))
    return path


def write_zip(results: list[Result], path: Path) -> Path | None:
    """Every structure of ``results`` as a standard CIF in one zip (None when there is none); a
    language-model sample that does not parse goes in as its raw text (``.txt``)."""
    path = Path(path)
    count = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for result in results:
            name = f"{_safe(result.model)}/{result.stem}"
            if result.structure is not None:
                from hfmat.cif.export import structure_to_standard_cif

                archive.writestr(name + ".cif", structure_to_standard_cif(result.structure))
                count += 1
            elif result.text is not None:
                archive.writestr(name + ".txt", result.text)
                count += 1
    if not count:
        path.unlink()
        return None
    return path

"""Energy above a convex hull built from a potential's own energies over a reference set.

The hull is a pymatgen ``PhaseDiagram`` of the reference structures (e.g. a dataset split) plus the
elemental ground states, built in the chemical system of each structure asked about (the entries
whose elements all lie in it), every energy computed with the same potential (by default after relaxing
each structure with it). It is a hull **of the potential over the reference set, not the Materials
Project's DFT hull**: a structure "on the hull" here is stable against the reference set as the
potential sees it, nothing more.

Elemental ground states are not looked up anywhere: for each element, candidate cells (fcc, bcc,
hcp, simple cubic, diamond, a dimer in a 10 Å box, and ASE's reference crystal where it has one)
are built at a bond length from the element's atomic radius, relaxed with the potential, and the
lowest energy per atom is kept. The computed entries are cached as JSON under a digest of the
potential, the settings and the reference structures.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from hfmat.physics.potentials import Potential, load_potential
from hfmat.physics.relaxation import energies, relax

#: Bumped when the elemental prototypes or the cache layout change (invalidates caches).
CACHE_VERSION = 1
NOTE = "hull of the potential's energies over the reference set, not the Materials Project DFT hull"


def default_cache_dir() -> Path:
    """``$HFMAT_CACHE/physics``, else ``~/.cache/hfmat/physics``."""
    root = os.environ.get("HFMAT_CACHE") or Path.home() / ".cache" / "hfmat"
    return Path(root) / "physics"


#: Candidate elemental cells, by name (see :func:`elemental_prototypes`).
PROTOTYPES = ("fcc", "bcc", "hcp", "sc", "diamond", "dimer", "ase")


def elemental_prototypes(element: str, prototypes: Sequence[str] = PROTOTYPES) -> list[Structure]:
    """Candidate ground-state cells of ``element``: fcc, bcc, hcp, simple cubic, diamond (primitive
    cells), a dimer in a 10 Å box, and ASE's reference crystal (``ase.build.bulk``) where ASE has
    one; the nearest-neighbour distance is twice pymatgen's atomic radius."""
    unknown = set(prototypes) - set(PROTOTYPES)
    if unknown:
        raise ValueError(f"unknown prototype(s) {sorted(unknown)}; choose from {', '.join(PROTOTYPES)}")
    el = Element(element)
    d = 2.0 * float(el.atomic_radius or el.atomic_radius_calculated or 1.5)
    builders = {
        "fcc": lambda: _cubic("Fm-3m", d * np.sqrt(2), el, [0, 0, 0]),
        "bcc": lambda: _cubic("Im-3m", 2 * d / np.sqrt(3), el, [0, 0, 0]),
        "hcp": lambda: Structure(
            Lattice.hexagonal(d, d * np.sqrt(8 / 3)), [el] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
        ),
        "sc": lambda: Structure(Lattice.cubic(d), [el], [[0, 0, 0]]),
        "diamond": lambda: _cubic("Fd-3m", 4 * d / np.sqrt(3), el, [0, 0, 0]),
        "dimer": lambda: Structure(Lattice.cubic(10.0), [el] * 2, [[0, 0, 0], [d / 10.0, 0, 0]]),
        "ase": lambda: _ase_bulk(element),
    }
    cells = [builders[name]() for name in prototypes]
    return [c for c in cells if c is not None]


def _cubic(space_group: str, a: float, el: Element, coords: list) -> Structure:
    """The primitive cell of a cubic crystal of one element on one Wyckoff site."""
    return Structure.from_spacegroup(space_group, Lattice.cubic(a), [el], [coords]).get_primitive_structure()


def _ase_bulk(element: str) -> Structure | None:
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        return AseAtomsAdaptor.get_structure(bulk(element))
    except Exception:  # noqa: BLE001 - ASE has no reference crystal for this element
        return None


def load_structures(
    source: str, data_dir: str | Path | None = None, limit: int | None = None
) -> list[Structure]:
    """The structures of ``SOURCE[:SPLIT]`` (anything ``hfmat.data.load_crystal_dataset`` takes, e.g.
    ``perov_5:val`` with ``data_dir``), the first ``limit`` rows; rows that do not parse are skipped."""
    from hfmat.cif import cif_to_structure
    from hfmat.evaluation.io import load_reference

    _, cifs = load_reference(source, data_dir=data_dir, default_split="val")
    out = []
    for text in cifs[:limit]:
        try:
            out.append(cif_to_structure(text))
        except Exception:  # noqa: BLE001 - the loader already reported unparseable rows
            continue
    return out


@dataclass
class ReferenceHull:
    """A potential's energies over a reference set, as pymatgen ``PDEntry`` objects; E_hull is taken
    in the chemical system of the structure asked about (see the module docstring)."""

    entries: list
    potential: str
    num_reference: int
    elements: tuple[str, ...]
    note: str = NOTE
    _diagrams: dict = field(default_factory=dict, repr=False)

    def phase_diagram(self, elements) -> object:
        """The pymatgen ``PhaseDiagram`` of the entries whose elements all lie in ``elements`` (one
        hull over every element at once would be a convex hull in ~50 dimensions: qhull never ends)."""
        from pymatgen.analysis.phase_diagram import PhaseDiagram

        key = frozenset(str(el) for el in elements)
        if key not in self._diagrams:
            inside = [e for e in self.entries if {el.symbol for el in e.composition.elements} <= key]
            self._diagrams[key] = PhaseDiagram(inside)
        return self._diagrams[key]

    def e_above_hull(self, composition: Composition | str, energy_per_atom: float) -> float:
        """Energy above this hull (eV/atom; negative when below it) of ``composition`` at
        ``energy_per_atom`` (the same potential's). ValueError if an element is not in the hull."""
        from pymatgen.analysis.phase_diagram import PDEntry

        comp = Composition(composition)
        missing = sorted({el.symbol for el in comp.elements} - set(self.elements))
        if missing:
            raise ValueError(f"{comp.reduced_formula}: element(s) {missing} are not in the reference hull")
        entry = PDEntry(comp, energy_per_atom * comp.num_atoms)
        diagram = self.phase_diagram(el.symbol for el in comp.elements)
        return float(diagram.get_e_above_hull(entry, allow_negative=True))


def e_above_hull(
    structures: Sequence[Structure | None], energies_per_atom: Sequence[float | None], hull: ReferenceHull
) -> list[float | None]:
    """:meth:`ReferenceHull.e_above_hull` of each structure; None where there is no structure or
    energy, or an element outside the hull."""
    out: list[float | None] = []
    for structure, energy in zip(structures, energies_per_atom):
        if structure is None or energy is None:
            out.append(None)
            continue
        try:
            out.append(hull.e_above_hull(structure.composition, energy))
        except ValueError:
            out.append(None)
    return out


def reference_hull(
    structures: Sequence[Structure],
    potential: str | Potential = "chgnet",
    relax_structures: bool = True,
    fmax: float = 0.1,
    steps: int = 300,
    batch_size: int = 8,
    extra_elements: Sequence[str] = (),
    prototypes: Sequence[str] = PROTOTYPES,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ReferenceHull:
    """The hull of ``potential`` over ``structures`` plus the elemental ground states of their elements
    (and ``extra_elements``), each the lowest of its relaxed ``prototypes``. Entries are computed once and cached as JSON in ``cache_dir``
    (default :func:`default_cache_dir`); structures the potential cannot evaluate are left out."""
    from pymatgen.analysis.phase_diagram import PDEntry

    pot = load_potential(potential)
    structures = list(structures)
    elements = sorted({el.symbol for s in structures for el in s.composition.elements} | set(extra_elements))
    settings = {
        "version": CACHE_VERSION,
        "potential": pot.description or pot.name,
        "relax": relax_structures,
        "fmax": fmax,
        "steps": steps,
        "elements": elements,
        "prototypes": list(prototypes),
    }
    path = Path(cache_dir or default_cache_dir()) / f"hull-{_digest(settings, structures)}.json"
    if path.exists():
        rows = json.loads(path.read_text())["entries"]
    else:
        rows = _compute_entries(
            structures, elements, prototypes, pot, relax_structures, fmax, steps, batch_size, progress
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"note": NOTE, "settings": settings, "entries": rows}, indent=1))
    entries = [PDEntry(Composition(r["composition"]), r["energy"], name=r["name"]) for r in rows]
    have = {el.symbol for e in entries if e.composition.is_element for el in e.composition.elements}
    if set(elements) - have:
        raise ValueError(f"no elemental ground state could be computed for {sorted(set(elements) - have)}")
    return ReferenceHull(entries, pot.description or pot.name, len(structures), tuple(elements))


def _digest(settings: dict, structures: list[Structure]) -> str:
    from hfmat.evaluation.matching import structure_key

    h = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for s in structures:
        h.update(structure_key(s).encode())
    return h.hexdigest()[:20]


def _compute_entries(
    structures, elements, prototypes, pot, relax_structures, fmax, steps, batch_size, progress
) -> list[dict]:
    """JSON rows {name, composition, energy (eV, whole cell)} of the references and elements."""
    candidates = [(el, cell) for el in elements for cell in elemental_prototypes(el, prototypes)]
    cells = [cell for _, cell in candidates]
    elemental = relax(cells, pot, fmax=fmax, steps=steps, batch_size=batch_size, progress=progress)
    best: dict[str, tuple[float, Structure]] = {}
    for (el, _), result in zip(candidates, elemental):
        if result.ok and (el not in best or result.energy_final < best[el][0]):
            best[el] = (result.energy_final, result.structure)
    rows = [
        {"name": f"{el} (elemental ground state)", "composition": el, "energy": energy, "kind": "element"}
        for el, (energy, _) in sorted(best.items())
    ]
    if relax_structures:
        done = relax(structures, pot, fmax=fmax, steps=steps, batch_size=batch_size, progress=progress)
        values = [r.energy_final if r.ok else None for r in done]
    else:
        values = [p.energy for p in energies(structures, pot, batch_size=batch_size, progress=progress)]
    for i, (structure, energy) in enumerate(zip(structures, values)):
        if energy is not None:
            comp = structure.composition
            rows.append(
                {
                    "name": f"reference {i}: {comp.reduced_formula}",
                    "composition": comp.formula,
                    "energy": energy * comp.num_atoms,
                    "kind": "reference",
                }
            )
    return rows

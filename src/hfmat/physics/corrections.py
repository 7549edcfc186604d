"""MP2020 energy corrections for a potential trained on uncorrected DFT energies.

CHGNet is trained on MPtrj energies with the Materials Project 2020 compatibility corrections
already applied (anion and GGA/GGA+U mixing terms); SevenNet-0 on the uncorrected ones. To put the
two on one scale, hfmat adds pymatgen's ``MaterialsProject2020Compatibility`` correction to
SevenNet's energies, as Matbench Discovery does for such models. The correction depends on the
composition (and, through the oxide type, on O-O distances), never on the positions' gradient, so
forces and stress are unchanged.
"""

from __future__ import annotations

from functools import lru_cache

from pymatgen.core import Structure


@lru_cache(maxsize=1)
def _compatibility():
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_correction(structure: Structure, energy: float) -> float:
    """The MP2020 correction (eV, for the whole cell) of a GGA(+U)-like ``energy`` of ``structure``,
    with the Hubbard U the Materials Project would have used; 0.0 when the scheme has none."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    compat = _compatibility()
    comp = structure.composition
    anion = max(comp.elements, key=lambda el: el.X).symbol
    settings = compat.u_settings.get(anion, {})
    hubbards = {el.symbol: settings[el.symbol] for el in comp.elements if settings.get(el.symbol)}
    entry = ComputedStructureEntry(
        structure,
        energy,
        parameters={"run_type": "GGA+U" if hubbards else "GGA", "hubbards": hubbards, "software": "ml"},
    )
    processed = compat.process_entry(entry)
    return 0.0 if processed is None else float(processed.correction)

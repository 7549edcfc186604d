"""Example structures that hfmat builds itself with pymatgen, written under ``examples/``."""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Lattice, Structure


def example_structures() -> dict[str, Structure]:
    """A handful of textbook crystals, built from their space groups."""
    return {
        "NaCl_rocksalt": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        "SrTiO3_perovskite": Structure.from_spacegroup(
            "Pm-3m",
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]],
        ),
        "ZnO_wurtzite": Structure.from_spacegroup(
            "P6_3mc",
            Lattice.hexagonal(3.25, 5.21),
            ["Zn", "O"],
            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
        ),
        "MgAl2O4_spinel": Structure.from_spacegroup(
            "Fd-3m",
            Lattice.cubic(8.08),
            ["Mg", "Al", "O"],
            [[0, 0, 0], [0.625, 0.625, 0.625], [0.387, 0.387, 0.387]],
        ),
        "TiO2_rutile": Structure.from_spacegroup(
            "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]
        ),
        "Si_diamond": Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
        "LiFeO2_P1": Structure(
            Lattice.from_parameters(4.1, 4.6, 5.3, 84.0, 97.0, 101.0),
            ["Li", "Fe", "O", "O"],
            [[0.02, 0.05, 0.01], [0.48, 0.52, 0.47], [0.21, 0.73, 0.28], [0.77, 0.27, 0.71]],
        ),
    }


def write_examples(out_dir: str | Path) -> list[Path]:
    """Write every example as ``<name>.cif`` (pymatgen's CIF writer, full P1 cell)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, structure in example_structures().items():
        path = out / f"{name}.cif"
        structure.to(filename=str(path), fmt="cif")
        paths.append(path)
    return paths

"""Files for other programs: a Structure written as a standard CIF, POSCAR or extended XYZ.

hfmat's canonical CIF (docs/cif_format.md) is the language model's internal text: it lists only
the symmetry-distinct sites, so other programs read it as a fraction of the cell. Everything hfmat
writes *for a user* goes through this module instead:

- ``cif``: a plain P1 CIF (pymatgen's ``CifWriter``) with every site of the cell written out and
  the identity as the only symmetry operation, so pymatgen, ASE, gemmi and VESTA read back the
  full cell with no tolerance involved; the space group spglib finds is given in a comment;
- ``poscar``: VASP's POSCAR (pymatgen's ``Poscar``);
- ``extxyz``: extended XYZ with the lattice and periodic boundaries (ASE's writer).

Every structure is written as it is. A structure with two atoms on one point (an invalid sample,
see ``hfmat.cif.structural_validity``) has no file that reads back whole: pymatgen merges or
rejects such sites. ``tests/test_interop.py`` reads every writer's output back with pymatgen, ASE,
gemmi and ``hfmat.cif.cif_to_structure``.
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Structure

from hfmat.cif.errors import CifError

#: Format name -> file suffix.
FORMATS = {"cif": ".cif", "poscar": ".vasp", "extxyz": ".extxyz"}


def _space_group_comment(structure: Structure, symprec: float) -> str:
    try:
        symbol, number = structure.get_space_group_info(symprec=symprec)
    except Exception:  # noqa: BLE001 - spglib fails on some cells: the comment is optional
        return ""
    return f"# space group found by spglib at symprec={symprec}: {symbol} ({number}); written in P1\n"


def structure_to_standard_cif(structure: Structure, symprec: float = 0.1) -> str:
    """``structure`` as a standard P1 CIF that other programs read back whole (every site listed)."""
    from pymatgen.io.cif import CifWriter

    _check(structure)
    text = str(CifWriter(structure))
    return _space_group_comment(structure, symprec) + text


def structure_to_text(structure: Structure, fmt: str = "cif") -> str:
    """``structure`` as the text of one of ``FORMATS``."""
    _check(structure)
    if fmt == "cif":
        return structure_to_standard_cif(structure)
    if fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        return Poscar(structure).get_str()
    if fmt == "extxyz":
        import io

        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        buffer = io.StringIO()
        write(buffer, AseAtomsAdaptor.get_atoms(structure), format="extxyz")
        return buffer.getvalue()
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_structure(structure: Structure, stem: str | Path, fmt: str = "cif") -> Path:
    """Write ``structure`` to ``stem`` + the format's suffix; returns the path written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(str(stem) + FORMATS[fmt])
    path.write_text(structure_to_text(structure, fmt))
    return path


def read_structure(path: str | Path) -> Structure:
    """The structure in a file of one of ``FORMATS``, chosen by its suffix (``.cif``: read with
    ``hfmat.cif.cif_to_structure``, so canonical and standard CIFs both work; ``.vasp``, or a
    file named POSCAR or CONTCAR: pymatgen's ``Poscar``; ``.extxyz``/``.xyz``: ASE's reader, the
    first frame). ValueError for another suffix, CifError for a file that does not read."""
    path = Path(path)
    suffix = path.suffix.lower()
    text = path.read_text()
    if suffix == ".cif":
        from hfmat.cif.reader import cif_to_structure

        return cif_to_structure(text)
    try:
        if suffix == ".vasp" or path.name.upper() in ("POSCAR", "CONTCAR"):
            from pymatgen.io.vasp import Poscar

            return Poscar.from_str(text).structure
        if suffix in (".extxyz", ".xyz"):
            import io

            from ase.io import read
            from pymatgen.io.ase import AseAtomsAdaptor

            atoms = read(io.StringIO(text), index=0, format="extxyz")
            if not atoms.pbc.all() or atoms.cell.rank < 3:
                raise CifError("no periodic cell (extended XYZ needs Lattice= and pbc)")
            return AseAtomsAdaptor.get_structure(atoms)
    except CifError:
        raise
    except Exception as err:  # noqa: BLE001 - the reader's own error, with the file's name
        raise CifError(f"{path.name}: {type(err).__name__}: {err}") from err
    raise ValueError(f"{path.name}: unknown structure file; use one of {', '.join(READ_SUFFIXES)}")


#: What :func:`read_structure` reads (and ``hfmat relax`` collects from a folder).
READ_SUFFIXES = (".cif", ".vasp", ".extxyz", ".xyz")


def _check(structure) -> None:
    if not isinstance(structure, Structure):
        raise CifError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if len(structure) == 0:
        raise CifError("structure has no sites")

"""Canonical CIF text <-> pymatgen Structure, and validity checks (see docs/cif_format.md)."""

from hfmat.cif.errors import CifError
from hfmat.cif.reader import cif_to_structure, parse_canonical
from hfmat.cif.structural import structural_validity
from hfmat.cif.writer import structure_to_cif

__all__ = ["CifError", "cif_to_structure", "parse_canonical", "structural_validity", "structure_to_cif"]

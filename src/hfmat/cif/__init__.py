"""Canonical CIF text <-> pymatgen Structure, and validity checks (see docs/cif_format.md)."""

from hfmat.cif.errors import CifError
from hfmat.cif.structural import structural_validity

__all__ = ["CifError", "structural_validity"]

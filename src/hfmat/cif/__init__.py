"""Canonical CIF text <-> pymatgen Structure, validity checks, and standard files for other
programs (``structure_to_standard_cif``, ``hfmat.cif.export``); docs/cif_format.md says which is
which."""

from hfmat.cif.batch import ItemResult, canonicalize_many, check_validity_many, parse_many
from hfmat.cif.errors import CifError
from hfmat.cif.export import structure_to_standard_cif
from hfmat.cif.reader import cif_to_structure, parse_canonical
from hfmat.cif.structural import structural_validity
from hfmat.cif.validity import CheckResult, ValidityReport, check_validity
from hfmat.cif.writer import structure_to_cif

__all__ = [
    "CheckResult",
    "CifError",
    "ItemResult",
    "ValidityReport",
    "canonicalize_many",
    "check_validity",
    "check_validity_many",
    "cif_to_structure",
    "parse_canonical",
    "parse_many",
    "structural_validity",
    "structure_to_cif",
    "structure_to_standard_cif",
]

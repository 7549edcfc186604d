"""The vocabulary of hfmat's CIF tokenizer, in its fixed id order.

The order is part of the format: a language model trained on these ids depends on it, so blocks
are only ever appended, never reordered. See docs/tokenizer.md for the table.

Blocks, in id order:

1. special tokens ``<pad>`` ``<bos>`` ``<eos>`` ``<unk>`` (ids 0-3);
2. the 118 element symbols ``H`` .. ``Og`` in order of atomic number (ids 4-121);
3. the 230 space groups in order of their number (ids 122-351). Their vocabulary string is the
   symbol with ONE LEADING SPACE (``" Pm-3m"``, ``" P1"``, ``" Pm"``): the space that separates
   ``_symmetry_space_group_name_H-M`` from its value belongs to the space-group token, which keeps
   ``Pm`` the space group apart from ``Pm`` the element, and ``P1`` apart from ``P`` + ``1``, while
   decoding gives back the exact text;
4. the digits ``0``-``9`` (numbers are spelled digit by digit);
5. whitespace: ``\\n``, ``\\t``, ``\\r``, ``\\x0b``, ``\\x0c`` and runs of 1 to 8 spaces;
6. every other printable ASCII character, in ASCII order (the character fallback; the capital
   letters that are one-letter element symbols, e.g. ``C``, already are element tokens);
7. CIF keywords (``data_``, ``loop_``, the identity operation ``'x, y, z'``);
8. CIF tags, one token each (the canonical format's tags first, then common standard tags).
"""

from __future__ import annotations

import string
from functools import lru_cache

from hfmat.chemistry import ELEMENTS, space_group_symbols
from hfmat.cif.tags import CANONICAL_TAGS

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

DIGITS: tuple[str, ...] = tuple(string.digits)

#: Longest run of spaces that is one token; longer runs are split into several.
MAX_SPACE_RUN = 8
WHITESPACE: tuple[str, ...] = ("\n", "\t", "\r", "\x0b", "\x0c") + tuple(
    " " * n for n in range(1, MAX_SPACE_RUN + 1)
)

#: Words of the CIF syntax that are one token. ``'x, y, z'`` is the identity operation that every
#: symmetry loop holds (the canonical format holds only it).
CIF_KEYWORDS: tuple[str, ...] = ("data_", "loop_", "'x, y, z'")

#: Common standard (CIF 1.1 core / powder / symmetry dictionary) tags of real-world CIFs,
#: including what pymatgen's CifWriter writes with magnetic moments, oxidation states or
#: anisotropic displacements.
COMMON_TAGS: tuple[str, ...] = (
    # symmetry
    "_space_group_symop_operation_xyz",
    "_space_group_symop_id",
    "_space_group_name_H-M_alt",
    "_space_group_name_Hall",
    "_space_group_IT_number",
    "_space_group_crystal_system",
    "_symmetry_space_group_name_Hall",
    "_symmetry_cell_setting",
    # cell and measurement
    "_cell_measurement_temperature",
    "_cell_measurement_pressure",
    "_cell_measurement_reflns_used",
    "_cell_measurement_theta_min",
    "_cell_measurement_theta_max",
    "_diffrn_ambient_temperature",
    "_diffrn_ambient_pressure",
    "_diffrn_radiation_type",
    "_diffrn_radiation_wavelength",
    "_exptl_crystal_density_diffrn",
    "_exptl_crystal_density_meas",
    # chemistry
    "_chemical_formula_weight",
    "_chemical_formula_moiety",
    "_chemical_formula_analytical",
    "_chemical_formula_iupac",
    "_chemical_name_systematic",
    "_chemical_name_common",
    "_chemical_name_mineral",
    "_chemical_name_structure_type",
    # atom sites
    "_atom_site_attached_hydrogens",
    "_atom_site_B_iso_or_equiv",
    "_atom_site_U_iso_or_equiv",
    "_atom_site_adp_type",
    "_atom_site_thermal_displace_type",
    "_atom_site_calc_flag",
    "_atom_site_refinement_flags",
    "_atom_site_disorder_assembly",
    "_atom_site_disorder_group",
    "_atom_site_Wyckoff_symbol",
    "_atom_site_wyckoff_symbol",
    "_atom_site_site_symmetry_order",
    "_atom_site_site_symmetry_multiplicity",
    "_atom_site_Cartn_x",
    "_atom_site_Cartn_y",
    "_atom_site_Cartn_z",
    "_atom_site_aniso_label",
    "_atom_site_aniso_type_symbol",
    "_atom_site_aniso_U_11",
    "_atom_site_aniso_U_22",
    "_atom_site_aniso_U_33",
    "_atom_site_aniso_U_12",
    "_atom_site_aniso_U_13",
    "_atom_site_aniso_U_23",
    "_atom_site_aniso_B_11",
    "_atom_site_aniso_B_22",
    "_atom_site_aniso_B_33",
    "_atom_site_aniso_B_12",
    "_atom_site_aniso_B_13",
    "_atom_site_aniso_B_23",
    "_atom_site_moment_label",
    "_atom_site_moment_crystalaxis_x",
    "_atom_site_moment_crystalaxis_y",
    "_atom_site_moment_crystalaxis_z",
    "_atom_type_oxidation_number",
    "_atom_type_number_in_cell",
    "_atom_type_scat_source",
    # provenance
    "_audit_creation_method",
    "_audit_creation_date",
    "_database_code_ICSD",
    "_database_code_amcsd",
    "_cod_database_code",
    "_pd_phase_name",
    "_publ_section_title",
    "_journal_name_full",
    "_journal_year",
    "_journal_volume",
    "_journal_page_first",
    "_journal_page_last",
    "_refine_ls_R_factor_all",
    "_refine_ls_wR_factor_ref",
)

#: The canonical format's tags (:data:`hfmat.cif.tags.CANONICAL_TAGS`, the ones its writer emits) first.
CIF_TAGS: tuple[str, ...] = CANONICAL_TAGS + COMMON_TAGS


def space_group_token(symbol: str) -> str:
    """Vocabulary string of a space group: the symbol with one leading space (``" Pm-3m"``)."""
    return " " + symbol


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Every token string, index = token id. Deterministic; append-only across versions."""
    tokens: list[str] = []
    seen: set[str] = set()

    def add(items) -> None:
        for item in items:
            if item not in seen:
                seen.add(item)
                tokens.append(item)

    add(SPECIAL_TOKENS)
    add(ELEMENTS)
    add(space_group_token(s) for s in space_group_symbols())
    add(DIGITS)
    add(WHITESPACE)
    add(c for c in string.printable if c not in string.whitespace)
    add(CIF_KEYWORDS)
    add(CIF_TAGS)
    _check(tokens)
    return tuple(tokens)


def _check(tokens: list[str]) -> None:
    if len(set(ELEMENTS)) != 118 or len(set(space_group_symbols())) != 230:
        raise RuntimeError("element or space-group table is not the expected size")
    if len(set(CIF_TAGS)) != len(CIF_TAGS):
        raise RuntimeError("duplicate CIF tag in the tag list")
    missing = set(string.printable) - set(tokens)
    if missing:
        raise RuntimeError(f"printable characters missing from the vocabulary: {sorted(missing)!r}")


def token_to_id() -> dict[str, int]:
    return {t: i for i, t in enumerate(vocabulary())}


def element_token_ids() -> dict[str, int]:
    """Element symbol -> token id, for all 118 elements (H .. Og)."""
    ids = token_to_id()
    return {el: ids[el] for el in ELEMENTS}


def space_group_token_ids() -> dict[str, int]:
    """Space-group symbol (as pymatgen writes it) -> token id, for all 230 groups."""
    ids = token_to_id()
    return {sg: ids[space_group_token(sg)] for sg in space_group_symbols()}


def digit_token_ids() -> dict[str, int]:
    """Digit character -> token id."""
    ids = token_to_id()
    return {d: ids[d] for d in DIGITS}


def tag_token_ids() -> dict[str, int]:
    """CIF tag (and keyword: ``data_``, ``loop_``, ``'x, y, z'``) -> token id."""
    ids = token_to_id()
    return {t: ids[t] for t in CIF_KEYWORDS + CIF_TAGS}


def special_token_ids() -> dict[str, int]:
    ids = token_to_id()
    return {t: ids[t] for t in SPECIAL_TOKENS}

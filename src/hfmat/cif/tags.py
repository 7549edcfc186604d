"""The tags of the canonical CIF format (docs/cif_format.md), by block, in the order the writer
writes them. The writer (:mod:`hfmat.cif.writer`) and the tokenizer's vocabulary
(:mod:`hfmat.tokenization.vocab`, where each tag is one token) both read them from here.

:data:`CANONICAL_TAGS` fixes token ids of shipped tokenizers: never reorder it, only append.
"""

from __future__ import annotations

#: One ``tag value`` line each, after the ``data_`` line.
HEADER_TAGS: tuple[str, ...] = (
    "_symmetry_space_group_name_H-M",
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
    "_symmetry_Int_Tables_number",
    "_chemical_formula_structural",
    "_chemical_formula_sum",
    "_cell_volume",
    "_cell_formula_units_Z",
)

#: The optional atom-property loop (CrystaLLM's; written after the header with ``atom_props=True``).
ATOM_TYPE_LOOP_TAGS: tuple[str, ...] = (
    "_atom_type_symbol",
    "_atom_type_electronegativity",
    "_atom_type_radius",
    "_atom_type_ionic_radius",
)

#: The symmetry loop (it holds only the identity ``1 'x, y, z'``).
SYMMETRY_LOOP_TAGS: tuple[str, ...] = (
    "_symmetry_equiv_pos_site_id",
    "_symmetry_equiv_pos_as_xyz",
)

#: The atom-site loop, one row per symmetry-distinct site.
ATOM_SITE_LOOP_TAGS: tuple[str, ...] = (
    "_atom_site_type_symbol",
    "_atom_site_label",
    "_atom_site_symmetry_multiplicity",
    "_atom_site_fract_x",
    "_atom_site_fract_y",
    "_atom_site_fract_z",
    "_atom_site_occupancy",
)

#: Every tag the canonical format writes: the always-written ones in writing order, then the
#: optional atom-property loop's (the vocabulary's tag order; frozen).
CANONICAL_TAGS: tuple[str, ...] = HEADER_TAGS + SYMMETRY_LOOP_TAGS + ATOM_SITE_LOOP_TAGS + ATOM_TYPE_LOOP_TAGS

#: The lines between the header (or the atom-property loop) and the first atom-site row: the
#: symmetry loop with its one identity row, then the atom-site loop's tags.
LOOPS_PREAMBLE: tuple[str, ...] = ("loop_", *SYMMETRY_LOOP_TAGS, "1 'x, y, z'", "loop_", *ATOM_SITE_LOOP_TAGS)

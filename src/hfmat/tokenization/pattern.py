"""The pre-tokenization regex: how text is cut into vocabulary pieces.

One Oniguruma regex, used with ``pre_tokenizers.Split(..., behavior="isolated")``. Its last
alternative matches any single character, so every character of the input lands in exactly one
piece and the pieces concatenate back to the input (the decoder is ``Fuse``). Alternatives, first
match wins at each position:

1. the spaces between a space-group tag and its value, all but the last one (pymatgen writes
   ``_symmetry_space_group_name_H-M   Pm-3m``: two spaces here, the third belongs to the group);
2. a space group, with its one leading space, right after ``_symmetry_space_group_name_H-M`` or
   ``_space_group_name_H-M_alt`` and before whitespace or the end. Elsewhere ``P1`` stays ``P`` +
   ``1``;
3. CIF keywords and tags, whole (``_atom_site_fract_x``), not inside a longer name;
4. an element symbol, only inside a formula-like word: a maximal run of letters, digits, ``(``,
   ``)`` and ``.`` whose letters spell element symbols (``ZnO``, ``Lu(SiPd)2``, ``Fe0.5Ni0.5``,
   the label ``Cu0``). ``The`` is not ``Th`` + ``e``: its ``e`` is no symbol, so the word is read
   character by character;
5. one digit;
6. a run of 1 to 8 spaces;
7. any single character (the character fallback; characters outside printable ASCII are ``<unk>``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from hfmat.chemistry import ELEMENTS, space_group_symbols
from hfmat.tokenization.vocab import CIF_TAGS, MAX_SPACE_RUN

#: Tags after which a space-group symbol is one token.
SPACE_GROUP_TAGS: tuple[str, ...] = ("_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt")
#: How many spaces may separate a space-group tag from its value (pymatgen writes three).
MAX_SPACE_GROUP_GAP = 4


def _alternation(words) -> str:
    """Regex alternation of literal words, longest first so that no word shadows a longer one."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@lru_cache(maxsize=1)
def split_pattern() -> str:
    el = _alternation(ELEMENTS)
    sg = _alternation(space_group_symbols())
    sg_tag = _alternation(SPACE_GROUP_TAGS)
    tags = _alternation(CIF_TAGS)
    formula_char = r"[0-9().]"
    gap = MAX_SPACE_GROUP_GAP - 1
    not_name = r"[A-Za-z0-9_]"
    alternatives = [
        # 1. extra spaces between a space-group tag and its value
        rf"(?<={sg_tag}) {{1,{gap}}}(?= (?:{sg})(?=\s|\z))",
        # 2. a space group with its leading space
        rf"(?<=(?:{sg_tag}) {{0,{gap}}}) (?:{sg})(?=\s|\z)",
        # 3. CIF keywords and tags
        rf"(?<!{not_name})data_",
        rf"(?<!{not_name})loop_(?!{not_name})",
        r"'x, y, z'",
        rf"(?<!{not_name})(?:{tags})(?![A-Za-z0-9_\-])",
        # 4. an element symbol inside a formula-like word
        rf"(?=[A-Z])(?<=(?:\A|[^A-Za-z0-9])(?:{el}|{formula_char})*)(?:{el})"
        rf"(?=(?>(?:{el}|{formula_char})*)(?![A-Za-z]))",
        # 5. a digit
        r"[0-9]",
        # 6. a run of spaces
        rf" {{1,{MAX_SPACE_RUN}}}",
        # 7. any single character
        r"[\s\S]",
    ]
    return "|".join(f"(?:{a})" for a in alternatives)

"""The pre-tokenization regex: how text is cut into vocabulary pieces.

One Oniguruma regex, used with ``pre_tokenizers.Split(..., behavior="isolated")``. Its last
alternative matches any single character, so every character of the input lands in exactly one
piece and the pieces concatenate back to the input (the decoder is ``Fuse``). At each position the
first alternative that matches wins:

1. one digit;
2. a newline;
3. starting with a space: the extra spaces between a space-group tag and its value (pymatgen writes
   ``_symmetry_space_group_name_H-M   Pm-3m``: the first two spaces are one piece, the third
   belongs to the group); a space group with its one leading space, right after
   ``_symmetry_space_group_name_H-M`` or ``_space_group_name_H-M_alt`` (1 to 4 spaces after the
   tag) and before whitespace or the end of the text (elsewhere ``P1`` stays ``P`` + ``1``);
   otherwise a run of 1 to 8 spaces;
4. a CIF tag, whole (``_atom_site_fract_x``), not inside a longer name;
5. an element symbol, only inside a formula-like word: the letters of the word from its start
   (after a character that is not a letter or digit) up to the symbol, and from the symbol to the
   end of its run of letters, digits, ``(``, ``)`` and ``.``, spell element symbols (``ZnO``,
   ``Lu(SiPd)2``, ``Fe0.5Ni0.5``, the label ``Cu0``). ``The`` is not ``Th`` + ``e``: its ``e`` is
   no symbol, so the word is read character by character;
6. the keywords ``data_``, ``loop_`` and the identity operation ``'x, y, z'``;
7. any single character (the character fallback; characters outside printable ASCII are ``<unk>``).

Literal alternatives (elements, space groups, tags) are written as tries, and every alternative
starts with a cheap test of its first character: the regex runs once per token, so this is what
sets the tokenizer's speed.
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


def trie_regex(words) -> str:
    """A regex matching exactly the given literal words, written as a trie (``H(?:[efgos])?``-like),
    longest alternative first at every branch so that no word shadows a longer one."""
    root: dict = {}
    for word in set(words):
        if not word:
            raise ValueError("trie_regex: empty word")
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:
        ends_here = "" in node
        branches, leaves = [], []
        for key in sorted(k for k in node if k):
            child = node[key]
            if set(child) == {""}:
                leaves.append(re.escape(key))
            else:
                branches.append(re.escape(key) + emit(child))
        if leaves:
            branches.append(leaves[0] if len(leaves) == 1 else "[" + "".join(leaves) + "]")
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends_here:
            body = f"(?:{body})?" if not body.startswith("(?:") or len(branches) == 1 else body + "?"
        return body

    return emit(root)


@lru_cache(maxsize=1)
def split_pattern() -> str:
    el = trie_regex(ELEMENTS)
    sg = trie_regex(space_group_symbols())
    sg_tag = trie_regex(SPACE_GROUP_TAGS)
    tags = trie_regex(CIF_TAGS)
    if not tags.startswith("_"):
        raise RuntimeError("every CIF tag must start with '_'")
    formula_char = r"[0-9().]"
    name_char = r"[A-Za-z0-9_]"
    gap = MAX_SPACE_GROUP_GAP
    sg_end = r"(?=\s|\z)"
    alternatives = [
        # 1. digit, 2. newline
        r"[0-9]",
        r"\n",
        # 3. starting with a space: extra gap spaces | space group | run of spaces
        rf" (?:(?<=(?:{sg_tag}) )(?: {{0,{gap - 2}}}(?= {sg}{sg_end})|{sg}{sg_end})"
        rf"|(?<=(?:{sg_tag}) {{2,{gap}}}){sg}{sg_end}"
        rf"| {{0,{MAX_SPACE_RUN - 1}}})",
        # 4. a CIF tag, not inside a longer name
        rf"_(?<!{name_char}_)(?:{tags[1:]})(?![A-Za-z0-9_\-])",
        # 5. an element symbol inside a formula-like word
        rf"(?=[A-Z])(?:(?<![A-Za-z0-9])|(?<=(?:\A|[^A-Za-z0-9])(?:{el}|{formula_char})*))"
        rf"{el}(?=(?>(?:{el}|{formula_char})*)(?![A-Za-z]))",
        # 6. keywords
        rf"d(?<!{name_char}d)ata_",
        rf"l(?<!{name_char}l)oop_(?!{name_char})",
        r"'x, y, z'",
        # 7. any single character
        r"[\s\S]",
    ]
    return "|".join(f"(?:{a})" for a in alternatives)

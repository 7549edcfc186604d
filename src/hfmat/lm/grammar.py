"""The canonical CIF format (docs/cif_format.md) as a character-level automaton.

A state is a small hashable tuple; :meth:`CifGrammar.step` advances it by one character and
returns None when the character cannot come next. The language-model constraint
(:mod:`hfmat.lm.constraints`) lifts this to tokens. What the automaton enforces:

- ``data_`` then a formula of element symbols with counts (``Sr1Ti1O3``); with a composition prompt
  the formula is the prompt's, so everything that follows is bound to it;
- every tag, in order, spelled exactly, with one space before its value;
- a space-group symbol (one of the 230 of :func:`hfmat.chemistry.space_group_symbols`) and then
  its own number in ``_symmetry_Int_Tables_number``;
- numbers with digits where numbers go and exactly ``decimals`` digits after the point (no
  leading zeros; cell lengths and volume at least 1, angles from 10 to 179.9999 degrees);
- ``_chemical_formula_structural``, ``_chemical_formula_sum`` and ``_cell_formula_units_Z``
  exactly as the formula implies;
- the fixed symmetry loop and atom-site header;
- atom-site rows ``El ElN mult x y z 1`` whose element is the formula's next element still
  short of atoms (rows go by element in formula order), label numbered from 0, multiplicity at
  most the atoms still missing, fractional coordinates ``0.dddd``; the text ends (end state)
  exactly when the multiplicities add up to the formula's counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hfmat.chemistry import ELEMENTS, space_group_number, space_group_symbols
from hfmat.cif.tags import LOOPS_PREAMBLE

__all__ = ["CifGrammar", "FormulaContext", "END"]

END = ("end",)
_ELEMENTS = frozenset(ELEMENTS)
_ELEMENT_PREFIXES = frozenset(e[:1] for e in ELEMENTS)
_DIGITS = frozenset("0123456789")
_GROUP_RE = re.compile(r"([A-Z][a-z]?)([1-9][0-9]*)")
_FORMULA_PREFIX_RE = re.compile(r"((?:[A-Z][a-z]?[1-9][0-9]*)*)([A-Z][a-z]?)?")

# Item kinds of the body program
_LIT, _NUM, _SG, _SGNUM, _ROWS = range(5)


@dataclass(frozen=True)
class FormulaContext:
    """What a data_ formula fixes about the rest of the CIF."""

    formula: str  # as on the data_ line, e.g. "Sr1Ti1O3"
    elements: tuple[str, ...]  # in formula order
    counts: tuple[int, ...]
    reduced_formula: str
    formula_sum: str  # "Sr1 Ti1 O3"
    formula_units: int


@lru_cache(maxsize=4096)
def formula_context(formula: str) -> FormulaContext | None:
    """Parse a data_ formula (``Sr1Ti1O3``); None if it is not elements with positive counts."""
    groups = _GROUP_RE.findall(formula)
    if not groups or "".join(e + n for e, n in groups) != formula:
        return None
    elements = tuple(e for e, _ in groups)
    if len(set(elements)) != len(elements) or not set(elements) <= _ELEMENTS:
        return None
    counts = tuple(int(n) for _, n in groups)
    from pymatgen.core import Composition

    comp = Composition(dict(zip(elements, counts)))
    _, factor = comp.get_reduced_composition_and_factor()  # as hfmat.cif.structure_to_cif writes Z
    return FormulaContext(
        formula=formula,
        elements=elements,
        counts=counts,
        reduced_formula=comp.reduced_formula,
        formula_sum=" ".join(f"{e}{n}" for e, n in zip(elements, counts)),
        formula_units=int(round(factor)),
    )


def _reachable(prefix: str, lo: int, hi: int) -> bool:
    """Whether an integer part starting with ``prefix`` can still end in [lo, hi]."""
    value = int(prefix)
    if prefix == "0":
        return lo <= 0
    scale = 1
    while len(prefix) + len(str(scale)) - 1 <= len(str(hi)):
        first, last = value * scale, (value + 1) * scale - 1
        if first <= hi and last >= lo:
            return True
        scale *= 10
    return False


class CifGrammar:
    """The canonical CIF grammar; ``decimals`` digits after every decimal point."""

    def __init__(
        self,
        decimals: int = 4,
        max_formula_count_digits: int = 3,
        max_elements: int = 10,
        spelled_symbols: bool = False,
    ):
        self.decimals = int(decimals)
        self.max_elements = int(max_elements)
        self.spelled_symbols = bool(spelled_symbols)
        self.max_length = 999  # integer part of a cell length, in angstrom
        self.max_volume = 999_999  # integer part of the cell volume, in cubic angstrom
        self.max_count_digits = int(max_formula_count_digits)
        self.space_groups = space_group_symbols()
        self._sg_prefixes = frozenset(s[:i] for s in self.space_groups for i in range(len(s) + 1))
        self._sg_set = frozenset(self.space_groups)
        self._programs: dict[str, tuple] = {}

    # ---------------------------------------------------------------------------- states

    def initial(self):
        return ("data", 0)

    def is_end(self, state) -> bool:
        return state == END

    def feed(self, state, text: str):
        """Advance ``state`` by every character of ``text``; None as soon as one is refused."""
        for ch in text:
            state = self.step(state, ch)
            if state is None:
                return None
        return state

    def is_literal(self, state) -> bool:
        """Whether ``state`` is inside fixed text (a tag, a fixed value, a row's label)."""
        kind = state[0]
        if kind == "data":
            return True
        if kind == "b":
            return self._program(state[1])[state[2]][0] in (_LIT, _SGNUM)
        if kind == "r":
            return state[4] in (0, 5)
        return False

    def at_space_group(self, state) -> bool:
        """Whether ``state`` is the start of the space-group symbol."""
        return (
            state is not None
            and state[0] == "b"
            and state[3] == ""
            and self._program(state[1])[state[2]][0] == _SG
        )

    def can_rest(self, state) -> bool:
        """Whether a token may end in ``state``. With whole element symbols as tokens
        (``spelled_symbols=False``) a formula cannot stop on a capital that is not an unused
        element (``T`` of ``Ti``): nothing could complete it."""
        if self.spelled_symbols or state[0] != "f":
            return True
        m = _FORMULA_PREFIX_RE.fullmatch(state[1])
        partial = (m.group(2) or "") if m else ""
        if len(partial) != 1:
            return True
        return partial in _ELEMENTS and partial not in {e for e, _ in _GROUP_RE.findall(m.group(1))}

    def step(self, state, ch: str):
        kind = state[0]
        if kind == "b":
            return self._step_body(state, ch)
        if kind == "r":
            return self._step_row(state, ch)
        if kind == "data":
            pos = state[1]
            if ch == "data_"[pos]:
                return ("f", "") if pos == 4 else ("data", pos + 1)
            return None
        if kind == "f":
            return self._step_formula(state[1], ch)
        return None  # END takes nothing

    # --------------------------------------------------------------------------- formula

    def _step_formula(self, text: str, ch: str):
        if ch == "\n":
            ctx = formula_context(text)
            return None if ctx is None else self._enter_item(ctx.formula, 0, None)
        new = text + ch
        m = _FORMULA_PREFIX_RE.fullmatch(new)
        if m is None:
            return None
        head = _GROUP_RE.findall(m.group(1))
        seen = [e for e, _ in head]
        if len(set(seen)) != len(seen) or not set(seen) <= _ELEMENTS:
            return None
        if any(len(n) > self.max_count_digits for _, n in head):
            return None
        partial = m.group(2) or ""
        if len(partial) == 1 and partial not in _ELEMENT_PREFIXES:
            return None
        if partial and len(seen) >= self.max_elements:
            return None
        if len(partial) == 2 and (partial not in _ELEMENTS or partial in seen):
            return None
        return ("f", new)

    # ------------------------------------------------------------------------------ body

    def _program(self, formula: str) -> tuple:
        prog = self._programs.get(formula)
        if prog is None:
            ctx = formula_context(formula)
            tail = (
                f"\n_chemical_formula_structural {ctx.reduced_formula}"
                f"\n_chemical_formula_sum '{ctx.formula_sum}'"
                "\n_cell_volume "
            )
            header = f"\n_cell_formula_units_Z {ctx.formula_units}\n" + "".join(
                line + "\n" for line in LOOPS_PREAMBLE
            )
            prog = (
                (_LIT, "_symmetry_space_group_name_H-M "),
                (_SG, None),
                (_LIT, "\n_cell_length_a "),
                (_NUM, (1, self.max_length)),
                (_LIT, "\n_cell_length_b "),
                (_NUM, (1, self.max_length)),
                (_LIT, "\n_cell_length_c "),
                (_NUM, (1, self.max_length)),
                (_LIT, "\n_cell_angle_alpha "),
                (_NUM, (10, 179)),
                (_LIT, "\n_cell_angle_beta "),
                (_NUM, (10, 179)),
                (_LIT, "\n_cell_angle_gamma "),
                (_NUM, (10, 179)),
                (_LIT, "\n_symmetry_Int_Tables_number "),
                (_SGNUM, None),
                (_LIT, tail),
                (_NUM, (1, self.max_volume)),
                (_LIT, header),
                (_ROWS, None),
            )
            self._programs[formula] = prog
        return prog

    def _enter_item(self, formula: str, index: int, sg):
        kind, _ = self._program(formula)[index]
        if kind == _ROWS:
            ctx = formula_context(formula)
            return self._row_start(formula, ctx.counts, 0)
        if kind == _NUM:
            return ("b", formula, index, ("", -1), sg)
        if kind == _SG:
            return ("b", formula, index, "", sg)
        return ("b", formula, index, 0, sg)

    def _step_body(self, state, ch: str):
        _, formula, index, sub, sg = state
        kind, arg = self._program(formula)[index]
        if kind == _LIT or kind == _SGNUM:
            text = arg if kind == _LIT else str(space_group_number(sg))
            if ch != text[sub]:
                return None
            if sub + 1 < len(text):
                return ("b", formula, index, sub + 1, sg)
            return self._enter_item(formula, index + 1, None if kind == _SGNUM else sg)
        if kind == _SG:
            new = sub + ch
            if new in self._sg_prefixes:
                return ("b", formula, index, new, sg)
            if sub in self._sg_set:
                return self._step_body(self._enter_item(formula, index + 1, sub), ch)
            return None
        if kind == _NUM:
            nint, nfrac = sub
            if nfrac < 0:  # integer part, as text ("0" only alone)
                if ch in _DIGITS:
                    new = nint + ch
                    if nint == "0" or not _reachable(new, *arg):
                        return None
                    return ("b", formula, index, (new, -1), sg)
                if ch == "." and nint and int(nint) >= arg[0]:
                    return ("b", formula, index, (nint, 0), sg)
                return None
            if nfrac < self.decimals:
                return ("b", formula, index, (nint, nfrac + 1), sg) if ch in _DIGITS else None
            return self._step_body(self._enter_item(formula, index + 1, sg), ch)
        return None

    # ------------------------------------------------------------------------------ rows

    def _row_items(self, formula: str, remaining: tuple[int, ...], row: int):
        ctx = formula_context(formula)
        element = next(e for e, n in zip(ctx.elements, remaining) if n > 0)
        return element, f"{element} {element}{row} "

    def _row_start(self, formula: str, remaining: tuple[int, ...], row: int):
        if not any(remaining):
            return END
        return ("r", formula, remaining, row, 0, 0)

    def _step_row(self, state, ch: str):
        # fields: 0 "El ElN " literal, 1 multiplicity digits, 2..4 " 0.dddd" coordinates, 5 " 1\n"
        _, formula, remaining, row, field, sub = state
        if field == 0:
            _, text = self._row_items(formula, remaining, row)
            if ch != text[sub]:
                return None
            if sub + 1 < len(text):
                return ("r", formula, remaining, row, 0, sub + 1)
            return ("r", formula, remaining, row, 1, "")
        if field == 1:
            slot = next(i for i, n in enumerate(remaining) if n > 0)
            if ch in _DIGITS:
                new = sub + ch
                if new[0] == "0" or int(new) > remaining[slot]:
                    return None
                return ("r", formula, remaining, row, 1, new)
            if ch == " " and sub:
                left = list(remaining)
                left[slot] -= int(sub)
                return ("r", formula, tuple(left), row, 2, 0)  # the space before x is read
            return None
        if 2 <= field <= 4:
            # sub counts characters of "0.dddd" (field 2 starts after its space), then a space
            width = 2 + self.decimals
            if sub < width:
                expect_ok = (ch == "0") if sub == 0 else (ch == ".") if sub == 1 else (ch in _DIGITS)
                return ("r", formula, remaining, row, field, sub + 1) if expect_ok else None
            if sub == width:
                if ch != " ":
                    return None
                if field < 4:
                    return ("r", formula, remaining, row, field + 1, 0)
                return ("r", formula, remaining, row, 5, 0)
            return None
        if field == 5:
            text = "1\n"
            if ch != text[sub]:
                return None
            if sub + 1 < len(text):
                return ("r", formula, remaining, row, 5, sub + 1)
            return self._row_start(formula, remaining, row + 1)
        return None

"""Which text the tokenizer represents exactly: printable ASCII (``string.printable``, which
includes space, ``\\t``, ``\\n``, ``\\r``, ``\\x0b``, ``\\x0c``). Anything else encodes to ``<unk>``."""

from __future__ import annotations

import string

PRINTABLE = frozenset(string.printable)


class UnrepresentableTextError(ValueError):
    """Text holds a character the tokenizer would encode as ``<unk>``."""

    def __init__(self, char: str, index: int, line: int, column: int):
        self.char, self.index, self.line, self.column = char, index, line, column
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at index {index} (line {line}, column {column}) "
            "is not printable ASCII: the hfmat tokenizer would encode it as <unk>"
        )


def check_representable(text: str) -> str:
    """Return ``text`` unchanged if every character is printable ASCII; otherwise raise
    :class:`UnrepresentableTextError` naming the first offending character and its position
    (0-based index, 1-based line and column)."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    for index, char in enumerate(text):
        if char not in PRINTABLE:
            line = text.count("\n", 0, index) + 1
            column = index - (text.rfind("\n", 0, index) + 1) + 1
            raise UnrepresentableTextError(char, index, line, column)
    return text

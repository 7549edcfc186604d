"""The prose tokenizer: a WordPiece tokenizer trained with ``tokenizers`` on crystal descriptions
that keeps chemistry whole, saved as a plain ``PreTrainedTokenizerFast`` folder that
``AutoTokenizer.from_pretrained`` loads without hfmat and without remote code.

Pre-tokenization (one Oniguruma regex, ``pre_tokenizers.Split(..., behavior="isolated")``; every
character lands in exactly one piece, first matching alternative wins):

1. a space-group symbol, whole and with its one leading space as in the CIF tokenizer
   (`` Pm-3m``, `` P4_2/mnm``), where the text says it is one: before ``space group`` or ``(No.``,
   or after ``space group``; so `` Pm`` the group is not ``Pm`` the element (promethium);
2. a space-group number after ``No.``, whole, with its leading space (`` 221``);
3. an element symbol inside a formula-like word, by the CIF tokenizer's rule (hfmat.tokenization:
   the word from its start spells element symbols, digits, ``(``, ``)``, ``.``): ``SrTiO3`` is
   ``Sr`` ``Ti`` ``O`` ``3``, while ``The`` stays a word;
4. one digit (other numbers go digit by digit, as in the CIF tokenizer);
5. a word that starts lower-case, with its one leading space (`` crystallizes``), or a capitalised
   word with no space (``It``);
6. one other character, with its one leading space (`` (``), or any single character.

WordPiece then splits a piece into vocabulary entries (``##`` marks a continuation). The
vocabulary is the trained one plus, always, every element symbol, every space-group symbol and
number 1-230 (with and without the leading space), every printable ASCII character and its ``##`` form, so chemistry is one token even
where the training text never had it and every ASCII text encodes without ``[UNK]``. The decoder
drops the ``##`` marks and joins the pieces, so ``decode(encode(text))`` gives the text back
exactly. Special tokens follow BERT: ``[PAD]`` ``[UNK]`` ``[CLS]`` ``[SEP]`` ``[MASK]``; encoding
wraps a text as ``[CLS] ... [SEP]``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from hfmat.chemistry import ELEMENTS, space_group_symbols
from hfmat.tokenization.build import pin_tokenizer_config
from hfmat.tokenization.pattern import trie_regex

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
PREFIX = "##"
#: Characters outside ASCII that crystal descriptions use (robocrystallographer writes Å and °).
EXTRA_CHARACTERS = ("Å", "°", "–", "×")
#: The longest text (in tokens, [CLS] and [SEP] included) recorded in tokenizer_config.json.
MODEL_MAX_LENGTH = 128


@lru_cache(maxsize=1)
def prose_pattern() -> str:
    """The pre-tokenization regex (see the module docstring)."""
    el = trie_regex(ELEMENTS)
    sg = trie_regex(space_group_symbols())
    formula_char = r"[0-9().]"
    symbol_char = r"[A-Za-z0-9_\-/]"
    alternatives = [
        rf"(?: |(?<!{symbol_char}))(?:{sg})(?=\s+space group|\s*\(No\.)",
        rf"(?<=space group) ?(?:{sg})(?!{symbol_char})",
        r"(?<=No\.) ?(?:[1-9][0-9]?[0-9]?)(?![0-9])",
        rf"(?=[A-Z])(?:(?<![A-Za-z0-9])|(?<=(?:\A|[^A-Za-z0-9])(?:{el}|{formula_char})*))"
        rf"{el}(?=(?>(?:{el}|{formula_char})*)(?![A-Za-z]))",
        r"[0-9]",
        r" ?[a-z][A-Za-z]*",
        r"[A-Za-z]+",
        r" ?[^\sA-Za-z0-9]",
        r"[\s\S]",
    ]
    return "|".join(f"(?:{a})" for a in alternatives)


def chemistry_tokens() -> list[str]:
    """Entries every prose vocabulary holds: element symbols, space-group symbols and numbers."""
    groups = [*space_group_symbols(), *(str(n) for n in range(1, 231))]
    return [*ELEMENTS, *(" " + g for g in groups), *groups]


def character_tokens() -> list[str]:
    chars = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"] + list(EXTRA_CHARACTERS)
    return [*chars, *(PREFIX + c for c in chars if c != " "), "\n", "\t", "\r"]


def _backend(vocab: dict[str, int] | None = None) -> Tokenizer:
    model = (
        models.WordPiece(
            vocab=vocab, unk_token=UNK, continuing_subword_prefix=PREFIX, max_input_chars_per_word=100
        )
        if vocab is not None
        else models.WordPiece(unk_token=UNK, continuing_subword_prefix=PREFIX, max_input_chars_per_word=100)
    )
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(prose_pattern()), behavior="isolated")
    tok.decoder = decoders.Sequence([decoders.Replace(Regex(f"^{PREFIX}"), ""), decoders.Fuse()])
    return tok


def train_prose_tokenizer(texts: Iterable[str], vocab_size: int = 1000, min_frequency: int = 2):
    """A :class:`PreTrainedTokenizerFast` trained on ``texts`` (WordPiece, ``vocab_size`` learned
    entries before the fixed chemistry and character entries are added)."""
    learner = _backend()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix=PREFIX,
        show_progress=False,
    )
    learner.train_from_iterator(texts, trainer=trainer)
    vocab = dict(sorted(learner.get_vocab().items(), key=lambda kv: kv[1]))
    for token in [*chemistry_tokens(), *character_tokens()]:
        vocab.setdefault(token, len(vocab))
    tok = _backend(vocab)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        pad_token=PAD,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        split_special_tokens=True,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def save_prose_tokenizer(tokenizer, out: str | Path) -> Path:
    """Save ``tokenizer`` to the folder ``out`` (tokenizer.json + tokenizer_config.json with the
    class recorded by its public name, so a folder that also holds a BERT config.json still loads
    this tokenizer and not a BertTokenizer)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    pin_tokenizer_config(out / "tokenizer_config.json", bos_only=False)
    return out


def general_tokenizer(texts: Iterable[str], vocab_size: int):
    """The comparison in docs/text_guidance.md: a byte-level BPE (GPT-2's scheme, no chemistry
    rules) trained on the same texts with the same vocabulary size."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNK, clean_up_tokenization_spaces=False)

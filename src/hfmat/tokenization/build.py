"""Builds hfmat's CIF tokenizer with the ``tokenizers`` library and saves it as a plain
``PreTrainedTokenizerFast`` folder (tokenizer.json + tokenizer_config.json) that
``AutoTokenizer.from_pretrained`` loads without hfmat and without remote code."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from hfmat.tokenization.pattern import split_pattern
from hfmat.tokenization.vocab import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, token_to_id

#: Context length recorded in tokenizer_config.json (CrystaLLM's context; a canonical MP-20 CIF
#: is well under it).
MODEL_MAX_LENGTH = 1024


def build_backend() -> Tokenizer:
    """The raw ``tokenizers.Tokenizer``: WordLevel over the fixed vocabulary, regex split, Fuse
    decoder, and a post-processor that prepends ``<bos>`` only (never ``<eos>``)."""
    vocab = token_to_id()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(split_pattern()), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A $B:1",
        special_tokens=[(BOS, vocab[BOS])],
    )
    return tok


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The hfmat tokenizer, in memory (identical to the shipped ``tokenizer/`` folder)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=build_backend(),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        # "<eos>" typed in text is five characters, not the special token: nothing typed is lost
        split_special_tokens=True,
        model_input_names=["input_ids", "attention_mask"],
    )


def save_tokenizer(
    out: str | Path, repo_id: str | None = None, *, tokenizer=None, card: bool = True
) -> list[Path]:
    """Write a tokenizer folder: tokenizer.json, tokenizer_config.json (pinned, see
    :func:`pin_tokenizer_config`) and, with ``card``, its card README.md whose snippet names
    ``repo_id``. ``tokenizer`` defaults to a fresh :func:`build_tokenizer`; pass a loaded one to
    save it next to a model (``card=False``: the model's card is the folder's README). Returns the
    files written; byte-identical on a rebuild."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    written = {Path(p) for p in tokenizer.save_pretrained(str(out)) if Path(p).exists()}
    pin_tokenizer_config(out / "tokenizer_config.json")
    if card:
        from hfmat.hub.tokenizer_card import DEFAULT_REPO_ID, tokenizer_card

        tokenizer_card(tokenizer, repo_id=repo_id or DEFAULT_REPO_ID).save(out / "README.md")
        written.add(out / "README.md")
    return sorted(written)


#: Keys transformers writes about where a tokenizer was loaded from, not what it is.
LOAD_TIME_KEYS = ("is_local", "local_files_only")


def pin_tokenizer_config(path: str | Path, bos_only: bool = True) -> None:
    """Record the class by its stable public name (transformers 5 writes ``TokenizersBackend``
    for a loaded tokenizer) and, with ``bos_only`` (the CIF tokenizer), the <bos>-only convention
    explicitly, so that a folder that also holds a GPT-2 or BERT config.json still loads this
    tokenizer (not a GPT2Tokenizer or BertTokenizer), and drop the load-time keys."""
    path = Path(path)
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if bos_only:
        config["add_bos_token"] = True
        config["add_eos_token"] = False
    for key in LOAD_TIME_KEYS:
        config.pop(key, None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

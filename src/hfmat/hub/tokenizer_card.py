"""The tokenizer's card (``model_cards/tokenizer.md``), so a saved tokenizer folder is a complete Hub repo.

from hfmat.tokenization import build_tokenizer
from hfmat.hub.tokenizer_card import tokenizer_card
tokenizer_card(build_tokenizer(), repo_id="hfmat/cif-tokenizer").save("tokenizer/README.md")
"""

from __future__ import annotations

from hfmat.hub.cards import model_card
from hfmat.hub.versions import installed_versions

DEFAULT_REPO_ID = "hfmat/cif-tokenizer"


def tokenizer_card(tokenizer, repo_id: str = DEFAULT_REPO_ID, *, license: str = "mit"):
    """A ``ModelCard`` for ``tokenizer`` (a ``PreTrainedTokenizerFast``) published as ``repo_id``."""
    special = ", ".join(f"`{t}`" for t in tokenizer.all_special_tokens)
    return model_card(
        "tokenizer",
        name=repo_id.split("/")[-1],
        repo_id=repo_id,
        library_name="transformers",
        tags=["hfmat", "crystals", "cif", "materials-science", "tokenizer"],
        license=license,
        # hfmat's version only: the folder must rebuild byte-identically whatever else is installed
        metadata={"hfmat": {"version": installed_versions().get("hfmat", "unknown")}},
        vocab_size=len(tokenizer),
        special_tokens=special,
        special_tokens_note=(
            "`tok(text)` prepends `<bos>` and never appends `<eos>`, so a generation prompt can be "
            "encoded as it is; language-model training text is `<bos>` + CIF + `<eos>`."
        ),
        vocab_notes=(
            "the vocabulary is fixed (built from the element and space-group tables, the CIF tags of "
            "the canonical format, digits and punctuation), not learned from data, so it has no "
            "dependence on a training set"
        ),
        built_from=(
            "A `tokenizers` WordLevel model over a fixed vocabulary, a regex `Split` pre-tokenizer "
            '(`behavior="isolated"`), a `Fuse` decoder and a post-processor that prepends `<bos>`. '
            "Rebuild it with `hfmat tokenizer build --out OUT_DIR`."
        ),
        limitations=(
            "Every printable ASCII character, tab, carriage return and newline has a token of its own, so any such text round-trips "
            "exactly; only the canonical format's tags and the standard tags of real-world CIFs are "
            "single tokens, other tags are spelled character by character. Characters outside "
            "that set map to `<unk>`: `hfmat.tokenization.check_representable` "
            "refuses such text with an error naming the character and its position."
        ),
    )

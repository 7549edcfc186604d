"""hfmat's chemistry-aware CIF tokenizer (built on the ``tokenizers`` library).

The shipped folder ``tokenizer/`` is what ``hfmat tokenizer build --out tokenizer/`` writes; it
loads with ``AutoTokenizer.from_pretrained("tokenizer/")`` and needs no hfmat. Conventions
(docs/tokenizer.md): encoding prepends ``<bos>`` and never appends ``<eos>`` (so a prompt can be
encoded as it is); language-model training text is ``<bos>`` + CIF + ``<eos>``, i.e.
``tok(cif)["input_ids"] + [tok.eos_token_id]`` (see :func:`encode_for_training`).
"""

from hfmat.tokenization.build import (
    MODEL_MAX_LENGTH,
    build_tokenizer,
    pin_tokenizer_config,
    save_tokenizer,
)
from hfmat.tokenization.load import encode_for_training, load_tokenizer
from hfmat.tokenization.representable import UnrepresentableTextError, check_representable
from hfmat.tokenization.vocab import (
    digit_token_ids,
    element_token_ids,
    space_group_token,
    space_group_token_ids,
    special_token_ids,
    tag_token_ids,
    vocabulary,
)

__all__ = [
    "MODEL_MAX_LENGTH",
    "UnrepresentableTextError",
    "build_tokenizer",
    "check_representable",
    "digit_token_ids",
    "element_token_ids",
    "encode_for_training",
    "load_tokenizer",
    "pin_tokenizer_config",
    "save_tokenizer",
    "space_group_token",
    "space_group_token_ids",
    "special_token_ids",
    "tag_token_ids",
    "vocabulary",
]

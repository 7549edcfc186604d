"""Text for crystals: the prose tokenizer, the text and crystal encoders and Crystal CLIP
(docs/text_guidance.md). Descriptions themselves are made by :mod:`hfmat.data.descriptions`."""

from hfmat.text.clip import CrystalCLIP, clip_loss, embed_pairs, text_encoder_config
from hfmat.text.crystal_encoder import CrystalEncoder
from hfmat.text.rerank import clip_similarity, keep_top, rerank
from hfmat.text.retrieval import attribute_retrieval, grouped_retrieval, retrieval_accuracy
from hfmat.text.tokenizer import general_tokenizer, save_prose_tokenizer, train_prose_tokenizer

__all__ = [
    "CrystalCLIP",
    "CrystalEncoder",
    "attribute_retrieval",
    "clip_loss",
    "clip_similarity",
    "embed_pairs",
    "general_tokenizer",
    "grouped_retrieval",
    "keep_top",
    "rerank",
    "retrieval_accuracy",
    "save_prose_tokenizer",
    "text_encoder_config",
    "train_prose_tokenizer",
]

"""Crystal CLIP: a text tower (a plain ``transformers`` BertModel and the prose tokenizer) and a
crystal tower (:class:`~hfmat.text.crystal_encoder.CrystalEncoder`) aligned by a symmetric InfoNCE
loss, as in CLIP and Chemeleon.

A text's embedding is the BertModel's ``pooler_output`` (the ``[CLS]`` state through the pooler's
dense layer and tanh), L2-normalised, so it needs nothing but transformers::

    tok = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
    bert = AutoModel.from_pretrained(folder, subfolder="text_encoder")
    emb = torch.nn.functional.normalize(bert(**tok(texts, padding=True, return_tensors="pt",
                                                   return_token_type_ids=False)).pooler_output, dim=-1)

Folder layout (``save_pretrained``): ``text_encoder/`` (config.json, model.safetensors),
``tokenizer/`` (tokenizer.json, tokenizer_config.json), ``crystal_encoder/`` (config.json,
diffusion_pytorch_model.safetensors), ``clip_config.json`` (the learned temperature, the text
columns trained on), and the card README.md written by the training script.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from hfmat.data.descriptions import TEXT_COLUMNS
from hfmat.text.crystal_encoder import CrystalEncoder

CLIP_CONFIG = "clip_config.json"
FORMAT = "hfmat-crystal-clip"


def text_encoder_config(tokenizer, *, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128):
    """A small ``BertConfig`` sized for ``tokenizer`` (one token type; positions up to its
    ``model_max_length``)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=int(tokenizer.model_max_length),
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
    )


def clip_loss(text: torch.Tensor, crystal: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of normalised pairs: the mean of the text -> crystal and the
    crystal -> text cross-entropies of ``exp(logit_scale) * text @ crystal.T``, targets on the
    diagonal."""
    logits = logit_scale.exp() * text @ crystal.T
    target = torch.arange(len(text), device=text.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class CrystalCLIP(nn.Module):
    """The two towers and the learned temperature (CLIP's ``logit_scale``, capped at log 100)."""

    def __init__(
        self,
        text_encoder,
        crystal_encoder: CrystalEncoder,
        tokenizer,
        *,
        logit_scale: float = math.log(1 / 0.07),
        text_columns: Sequence[str] = TEXT_COLUMNS,
    ):
        super().__init__()
        width, embed = text_encoder.config.hidden_size, crystal_encoder.config.embed_dim
        if width != embed:
            raise ValueError(
                f"the text encoder's hidden_size ({width}) must equal the crystal embed_dim ({embed})"
            )
        self.text_encoder = text_encoder
        self.crystal_encoder = crystal_encoder
        self.tokenizer = tokenizer
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        self.text_columns = tuple(text_columns)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)
        return F.normalize(out.pooler_output, dim=-1)

    def encode_crystals(self, atom_types, frac_coords, lattices, num_atoms) -> torch.Tensor:
        return F.normalize(self.crystal_encoder(atom_types, frac_coords, lattices, num_atoms), dim=-1)

    def forward(self, batch: dict) -> dict:
        """A :class:`hfmat.text.data.ClipCollator` batch -> ``{"loss", "text", "crystal"}``."""
        text = self.encode_text(batch["input_ids"], batch["attention_mask"])
        crystal = self.encode_crystals(
            batch["atom_types"], batch["frac_coords"], batch["lattices"], batch["num_atoms"]
        )
        scale = self.logit_scale.clamp(max=math.log(100.0))
        return {"loss": clip_loss(text, crystal, scale), "text": text, "crystal": crystal}

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Normalised embeddings [len(texts), dim] of plain strings."""
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings, not one string")
        device = self.logit_scale.device
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                truncation=True,
                return_tensors="pt",
                return_token_type_ids=False,
            ).to(device)
            out.append(self.encode_text(enc["input_ids"], enc["attention_mask"]))
        return torch.cat(out) if out else torch.empty(0, self.text_encoder.config.hidden_size)

    @torch.no_grad()
    def embed_structures(self, structures, batch_size: int = 256) -> torch.Tensor:
        """Normalised embeddings of pymatgen Structures (their Niggli graphs)."""
        from hfmat.data import GraphCollator, structure_to_graph

        collate, device, out = GraphCollator(), self.logit_scale.device, []
        for i in range(0, len(structures), batch_size):
            b = collate([structure_to_graph(s) for s in structures[i : i + batch_size]])
            out.append(
                self.encode_crystals(
                    b["atom_types"].to(device),
                    b["frac_coords"].to(device),
                    b["lattices"].to(device),
                    b["num_atoms"].to(device),
                )
            )
        return torch.cat(out)

    def save_pretrained(self, folder: str | Path, **extra) -> Path:
        """Write the folder (module docstring); ``extra`` goes into clip_config.json."""
        from hfmat.text.tokenizer import save_prose_tokenizer

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.text_encoder.save_pretrained(folder / "text_encoder")
        save_prose_tokenizer(self.tokenizer, folder / "tokenizer")
        self.crystal_encoder.save_pretrained(folder / "crystal_encoder")
        config = {
            "format": FORMAT,
            "logit_scale": float(self.logit_scale.detach()),
            "embed_dim": int(self.crystal_encoder.config.embed_dim),
            "text_columns": list(self.text_columns),
            "text_embedding": "L2-normalised pooler_output of text_encoder",
            **extra,
        }
        (folder / CLIP_CONFIG).write_text(json.dumps(config, indent=1) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> CrystalCLIP:
        """Load a folder, a shipped model by name (``crystal-clip-perov5``) or a Hub repo id (from the
        local cache when offline), as :func:`hfmat.hub.resolve` finds it."""
        from transformers import AutoModel, AutoTokenizer

        from hfmat.hub.resolve import resolve

        folder = resolve(name_or_path)
        config_path = folder / CLIP_CONFIG
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder} is not a Crystal CLIP folder: it has no {CLIP_CONFIG}")
        config = json.loads(config_path.read_text())
        if config.get("format") != FORMAT:
            raise ValueError(f"{config_path}: format is {config.get('format')!r}, expected {FORMAT!r}")
        model = cls(
            AutoModel.from_pretrained(folder / "text_encoder"),
            CrystalEncoder.from_pretrained(folder / "crystal_encoder"),
            AutoTokenizer.from_pretrained(folder / "tokenizer"),
            logit_scale=config["logit_scale"],
            text_columns=config["text_columns"],
        )
        model.config = config
        return model.eval()


@torch.no_grad()
def embed_pairs(model: CrystalCLIP, dataset, column: str, batch_size: int = 256):
    """(text embeddings, crystal embeddings) of every row of ``dataset`` (graph and text columns),
    the text taken from ``column``."""
    from hfmat.text.data import ClipCollator

    collate = ClipCollator(model.tokenizer, column=column)
    was_training = model.training
    model.eval()
    texts, crystals = [], []
    device = model.logit_scale.device
    for i in range(0, len(dataset), batch_size):
        batch = collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
        out = model({k: v.to(device) for k, v in batch.items()})
        texts.append(out["text"].cpu())
        crystals.append(out["crystal"].cpu())
    model.train(was_training)
    return torch.cat(texts), torch.cat(crystals)

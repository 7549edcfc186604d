"""The model card (README.md) of a Crystal CLIP folder, from its training_summary.json."""

from __future__ import annotations

import json
from pathlib import Path


def _row(name: str, r: dict) -> str:
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    return (
        f"| `{name}` | {pct(r['text_to_crystal_top1'])} | {pct(r['text_to_crystal_top5'])} | "
        f"{pct(r['crystal_to_text_top1'])} | {pct(r['crystal_to_text_top5'])} | "
        f"{pct(r['chance_top1'])} / {pct(r['chance_top5'])} | {r['queries']} |"
    )


def clip_card(folder: str | Path, model_path: str | None = None, notes: str = "") -> str:
    """The card's text; ``model_path`` is the folder as the reproduce command names it (default: the
    folder's name); ``notes`` is a paragraph added under the measured figures."""
    folder = Path(folder)
    model_path = model_path or folder.name
    record = json.loads((folder / "training_summary.json").read_text())
    clip = json.loads((folder / "clip_config.json").read_text())
    cfg, summary = record["config"], record["summary"]
    name = clip.get("model_name") or folder.name
    test = summary.get("test") or {}
    rows = [_row(c, test[c]) for c in clip["text_columns"] if c in test]
    candidates = next((test[c]["num_candidates"] for c in clip["text_columns"] if c in test), None)
    table = (
        f"Retrieval on the `{test['split']}` split ({test['pairs']} held-out pairs, never trained on), "
        f"each query against {candidates} candidates (blocks of {candidates} pairs drawn at random):\n\n"
        "| text column | text → crystal top-1 | text → crystal top-5 | crystal → text top-1 | "
        "crystal → text top-5 | chance top-1 / top-5 | queries |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        if rows
        else "No held-out retrieval was measured for this folder."
    )
    return f"""---
library_name: transformers
tags:
- hfmat
- crystal-clip
- materials
- crystals
---

# {name}

Crystal CLIP (hfmat): a text encoder and a crystal encoder trained together with a symmetric
InfoNCE loss (CLIP; the alignment step of Chemeleon, Park, Onwuli and Walsh 2024), so that a crystal
and a description of it get nearby embeddings.

- `text_encoder/`: a plain `transformers` BertModel trained from scratch
  ({summary["n_params"]:,} parameters in both towers together); a text's embedding is its
  L2-normalised `pooler_output`.
- `tokenizer/`: hfmat's prose tokenizer (WordPiece, element symbols and space groups whole).
- `crystal_encoder/`: hfmat's `CrystalEncoder` (the diffusion denoiser's graph network at t=0,
  mean-pooled and projected); config.json + safetensors.

```python
import torch
from transformers import AutoModel, AutoTokenizer

tok = AutoTokenizer.from_pretrained("{model_path}", subfolder="tokenizer")
bert = AutoModel.from_pretrained("{model_path}", subfolder="text_encoder")
enc = tok(["SrTiO3, a cubic crystal"], padding=True, return_tensors="pt", return_token_type_ids=False)
text_embedding = torch.nn.functional.normalize(bert(**enc).pooler_output, dim=-1)

from hfmat.text import CrystalCLIP   # both towers, for crystals too
clip = CrystalCLIP.from_pretrained("{model_path}")
```

## Data

`{cfg["dataset"]}`, split `{cfg["train_split"]}`: {summary["train_pairs"]} crystals trained on,
{summary["eval_pairs"]} held out for the eval loss. Each crystal's text is drawn per step from the
columns {", ".join(f"`{c}`" for c in clip["text_columns"])} made by `hfmat.data.descriptions`
(templates: the composition; composition and crystal system; a sentence with the space group, the
structure type where known and the dataset's properties in words). {cfg.get("dataset_note") or ""}

## Measured

{table}
{chr(10) + notes + chr(10) if notes else ""}
Training: {summary["step"]} optimizer steps ({summary["epochs"]:.1f} epochs) in {summary["wall_s"] / 60:.1f}
minutes; train loss {summary["first_train_loss"]:.3f} at the first step, {summary["train_loss"]:.3f} at
the last (batch {cfg["per_device_batch_size"]}; log(batch) = {__import__("math").log(cfg["per_device_batch_size"]):.3f}
is the loss of a model that knows nothing); eval loss {summary["eval"]["loss"]:.3f}.

Reproduce (from the repository root):

```bash
{summary["command"]}
python benchmarks/bench_crystal_clip.py retrieval --model {model_path} --dataset {cfg["dataset"]} --split {test.get("split", "test")}
```
"""


def write_clip_card(folder: str | Path, model_path: str | None = None, notes: str = "") -> Path:
    path = Path(folder) / "README.md"
    path.write_text(clip_card(folder, model_path, notes))
    return path

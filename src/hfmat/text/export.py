"""Crystal CLIP's text side as Hub repositories of their own, each loadable by plain transformers
without ``subfolder``, and the cards of all three.

    python -m hfmat.text.export src/hfmat/checkpoints/crystal-clip-perov5

writes, next to the CLIP folder, ``crystal-text-encoder-perov5/`` (the BertModel and its tokenizer:
config.json, model.safetensors, tokenizer.json, tokenizer_config.json, README.md) and
``prose-tokenizer-perov5/`` (tokenizer.json, tokenizer_config.json, README.md), copied byte for byte
from the CLIP folder's ``text_encoder/`` and ``tokenizer/``, and rewrites the CLIP card so that it
names them (repo ids ``ORG/<folder name>``, ``--org`` default hfmat).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from hfmat.text.card import (
    clip_card,
    prose_tokenizer_card,
    read_clip_folder,
    text_encoder_card,
    text_side_name,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
TEXT_ENCODER_FILES = ("config.json", "model.safetensors")


def _copy(source: Path, names, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (source / name).is_file():
            raise FileNotFoundError(f"{source / name} is missing: is {source.parent} a Crystal CLIP folder?")
        shutil.copyfile(source / name, out / name)


def export_text_repos(
    clip_folder: str | Path,
    text_encoder_out: str | Path | None = None,
    tokenizer_out: str | Path | None = None,
    *,
    org: str = "hfmat",
) -> dict[str, Path]:
    """Write the text encoder and the prose tokenizer folders of ``clip_folder`` and the three cards;
    returns ``{"clip", "text_encoder", "tokenizer"}`` -> folder."""
    clip_folder = Path(clip_folder)
    name = read_clip_folder(clip_folder)["clip"].get("model_name") or clip_folder.name
    text_encoder_out = Path(text_encoder_out or clip_folder.parent / text_side_name(name, "text-encoder"))
    tokenizer_out = Path(tokenizer_out or clip_folder.parent / text_side_name(name, "tokenizer"))
    repos = {
        "clip": f"{org}/{name}",
        "text_encoder": f"{org}/{text_encoder_out.name}",
        "tokenizer": f"{org}/{tokenizer_out.name}",
    }
    _copy(clip_folder / "text_encoder", TEXT_ENCODER_FILES, text_encoder_out)
    _copy(clip_folder / "tokenizer", TOKENIZER_FILES, text_encoder_out)
    _copy(clip_folder / "tokenizer", TOKENIZER_FILES, tokenizer_out)
    text_encoder_card(
        clip_folder, repos["text_encoder"], clip_repo=repos["clip"], tokenizer_repo=repos["tokenizer"]
    ).save(text_encoder_out / "README.md")
    prose_tokenizer_card(
        clip_folder, repos["tokenizer"], clip_repo=repos["clip"], text_encoder_repo=repos["text_encoder"]
    ).save(tokenizer_out / "README.md")
    clip_card(
        clip_folder, repos["clip"], text_encoder_repo=repos["text_encoder"], tokenizer_repo=repos["tokenizer"]
    ).save(clip_folder / "README.md")
    return {"clip": clip_folder, "text_encoder": text_encoder_out, "tokenizer": tokenizer_out}


def main(argv=None) -> dict[str, Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip_folder", help="a Crystal CLIP folder (as train_crystal_clip.py writes it)")
    p.add_argument("--text-encoder", default=None, help="output folder (default: beside the CLIP folder)")
    p.add_argument("--tokenizer", default=None, help="output folder (default: beside the CLIP folder)")
    p.add_argument("--org", default="hfmat", help="the Hub organisation the cards name (default hfmat)")
    args = p.parse_args(argv)
    out = export_text_repos(args.clip_folder, args.text_encoder, args.tokenizer, org=args.org)
    for what, folder in out.items():
        print(f"{what}: {folder}")
    return out


if __name__ == "__main__":
    main()

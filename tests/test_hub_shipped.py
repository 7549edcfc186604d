"""Every shipped checkpoint under checkpoints/ is a complete Hub repository that `hfmat push` accepts
(files, safetensors headers, card with metadata and a model-index where it reports results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfmat.hub import check_folder

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (REPO / "checkpoints").glob("*") if p.is_dir())


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_is_a_complete_hub_repo(folder):
    from huggingface_hub import ModelCard

    artifact = check_folder(folder)
    assert artifact.kind in ("language-model", "pipeline")
    card = ModelCard.load(folder / "README.md")
    assert card.data.to_dict()["hfmat"]["repo_id"] == f"hfmat/{folder.name}"
    assert f'from_pretrained("hfmat/{folder.name}")' in card.text

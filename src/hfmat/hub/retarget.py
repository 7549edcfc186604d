"""Point a card's snippets at the repo it is pushed to.

A card rendered by :func:`hfmat.hub.render_card` records the repo id its snippets name
(``hfmat.repo_id`` in the YAML metadata; the training scripts default to ``hfmat/<model_name>``).
Pushing the folder to another repo would publish snippets that load the wrong model, so
:func:`retargeted_folder` stages a copy whose README.md names the target repo instead (the other
files are symlinked, not copied).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def card_repo_id(folder: str | Path) -> str | None:
    """The repo id recorded in ``folder/README.md`` (``hfmat.repo_id``), if any."""
    from huggingface_hub.repocard import RepoCard

    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return None
    try:
        block = RepoCard.load(readme).data.to_dict().get("hfmat")
    except (ValueError, OSError):
        return None
    value = block.get("repo_id") if isinstance(block, dict) else None
    return value if isinstance(value, str) else None


def retarget_card(readme: Path, old: str, new: str):
    """The card at ``readme`` with ``old`` -> ``new`` in its text and ``hfmat.repo_id`` (other
    metadata, such as ``base_model``, is left alone)."""
    from huggingface_hub.repocard import RepoCard

    card = RepoCard.load(readme)
    card.data["hfmat"] = {**card.data["hfmat"], "repo_id": new}
    card.text = card.text.replace(old, new)
    return card


@contextlib.contextmanager
def retargeted_folder(folder: Path, files: list[str], old: str, new: str) -> Iterator[Path]:
    """A temporary folder with ``files`` of ``folder`` symlinked and README.md rewritten ``old`` -> ``new``."""
    with tempfile.TemporaryDirectory(prefix="hfmat-push-") as tmp:
        stage = Path(tmp)
        for name in files:
            target = stage / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name == "README.md":
                retarget_card(folder / name, old, new).save(target)
            else:
                os.symlink((folder / name).resolve(), target)
        yield stage

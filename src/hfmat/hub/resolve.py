"""Turn ``ORG/NAME`` or a local folder into a local folder, with errors that say how to fix it."""

from __future__ import annotations

import os
from pathlib import Path

from hfmat.hub.errors import NotCachedError


def _is_repo_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def offline() -> bool:
    """Whether huggingface_hub runs offline (``HF_HUB_OFFLINE=1``, read when it was imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve(
    name_or_path: str | os.PathLike,
    *,
    repo_type: str = "model",
    revision: str | None = None,
    allow_patterns: list[str] | None = None,
) -> Path:
    """A local folder for ``name_or_path``: the folder itself if it exists, else the snapshot of the
    Hub repo ``ORG/NAME`` (downloaded, or taken from the cache when offline).

    Raises FileNotFoundError for a path that does not exist and is not a repo id, and
    :class:`NotCachedError` for a repo id that is neither cached nor reachable.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    from hfmat.shipped import ALL_NAMES, shipped_model

    if name in ALL_NAMES:  # a shipped model by its bare name (hfmat/checkpoints/NAME)
        return shipped_model(name)
    if path.exists():
        raise FileNotFoundError(f"{name} is a file, not a folder: pass the folder that holds it")
    if not _is_repo_id(name):
        raise FileNotFoundError(f"no folder {name} (and it is not a Hub repo id of the form ORG/NAME)")
    flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
    at = f" at revision {revision}" if revision else ""
    try:
        return Path(
            snapshot_download(name, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns)
        )
    except (RepositoryNotFoundError, GatedRepoError) as err:
        raise NotCachedError(
            f"{repo_type} repo {name} was not found on the Hub{at} (nor a local folder of that name): "
            "check the spelling, and for a private or gated repo log in with `hf auth login`"
        ) from err
    except RevisionNotFoundError as err:
        raise NotCachedError(f"{repo_type} repo {name} has no revision {revision}") from err
    except LocalEntryNotFoundError as err:
        if offline():
            how = (
                f"HF_HUB_OFFLINE=1 is set, so hfmat cannot download it. Either unset HF_HUB_OFFLINE on a "
                f"machine with network access, or download it there (`hf download {name}{flag}`) and copy "
                f"the cache over, or pass the path of a local folder instead"
            )
        else:
            how = (
                f"the Hub ({constants.ENDPOINT}) could not be reached. Check your network, or download it "
                f"elsewhere (`hf download {name}{flag}`) and pass the local folder"
            )
        shipped = ""
        if "/" not in name:  # a bare name: perhaps meant as one of the shipped models
            import difflib

            close = difflib.get_close_matches(name, ALL_NAMES, n=1)
            shipped = (f" Did you mean the shipped {close[0]}?" if close else "") + (
                f" hfmat ships these by bare name: {', '.join(sorted(ALL_NAMES))}."
            )
        raise NotCachedError(
            f"{repo_type} repo {name}{at} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) "
            f"and no local folder has that name. {how}.{shipped}"
        ) from err

"""Upload a checked artifact folder to the Hub with ``huggingface_hub.HfApi``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hfmat.hub.layout import Artifact, check_folder


@dataclass
class PushResult:
    """What was pushed where: the checked artifact, the repo URL and the commit (None on a dry run)."""

    artifact: Artifact
    repo_id: str
    repo_url: str | None
    commit_url: str | None


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    kind: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    api=None,
) -> PushResult:
    """Check ``folder`` (:func:`check_folder`) and upload exactly its checked files to ``repo_id``.

    Creates the repo first (``exist_ok=True``) and, for a ``revision`` other than ``main``, the
    branch. The files sent are ``artifact.files`` (hidden files and ``__pycache__`` left out).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)
    artifact = check_folder(Path(folder), kind)
    if dry_run:
        return PushResult(artifact, repo_id, None, None)
    api = api or HfApi(token=token)
    repo_type = artifact.repo_type
    url = api.create_repo(repo_id, private=private, repo_type=repo_type, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(artifact.folder),
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message or f"Upload {artifact.kind} with hfmat",
        allow_patterns=list(artifact.files),
    )
    return PushResult(artifact, repo_id, str(url), str(getattr(commit, "commit_url", commit)))

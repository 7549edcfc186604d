"""Upload a checked artifact folder to the Hub with ``huggingface_hub.HfApi``."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from hfmat.hub.errors import HubError
from hfmat.hub.layout import Artifact, check_folder
from hfmat.hub.retarget import card_repo_id, retargeted_folder


@dataclass
class PushResult:
    """What was pushed where: the checked artifact, the repo URL and the commit (None on a dry run)."""

    artifact: Artifact
    repo_id: str
    repo_url: str | None
    commit_url: str | None
    card_retargeted_from: str | None = None  # the repo id the card's snippets named before the push


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
    branch. The files sent are ``artifact.files`` (hidden files and ``__pycache__`` left out). When
    the card's snippets name another repo (``hfmat.repo_id`` in its metadata, e.g. the
    ``hfmat/<name>`` default of the training scripts), the uploaded README.md names ``repo_id``
    instead; the folder on disk is left as it is.
    """
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)
    artifact = check_folder(Path(folder), kind)
    old = card_repo_id(artifact.folder)
    old = old if old and old != repo_id else None
    if dry_run:
        return PushResult(artifact, repo_id, None, None, old)
    with contextlib.ExitStack() as stack:
        source = artifact.folder
        if old:
            source = stack.enter_context(retargeted_folder(artifact.folder, artifact.files, old, repo_id))
        url, commit = _upload(api, token, artifact, source, repo_id, private, revision, commit_message)
    return PushResult(artifact, repo_id, str(url), str(getattr(commit, "commit_url", commit)), old)


def _upload(api, token, artifact, source, repo_id, private, revision, commit_message):
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    repo_type = artifact.repo_type
    try:
        url = api.create_repo(repo_id, private=private, repo_type=repo_type, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(source),
            repo_type=repo_type,
            revision=revision,
            commit_message=commit_message or f"Upload {artifact.kind} with hfmat",
            allow_patterns=list(artifact.files),
        )
    except _network_errors() as err:
        raise HubError(_explain_upload_error(err, repo_id, artifact)) from err
    return url, commit


def _network_errors() -> tuple[type[BaseException], ...]:
    """OSError and the HTTP library's base error (httpx or requests, whichever huggingface_hub uses)."""
    from huggingface_hub.errors import HfHubHTTPError

    return (OSError, *[c for c in HfHubHTTPError.__mro__[1:] if c.__name__ == "HTTPError"])


def _explain_upload_error(err: BaseException, repo_id: str, artifact: Artifact) -> str:
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    checked = f"({artifact.folder} passed its checks: {len(artifact.files)} files, nothing was uploaded)"
    if isinstance(err, OfflineModeIsEnabled):
        return f"HF_HUB_OFFLINE=1 is set, so nothing can be pushed to {repo_id}: unset it and run again {checked}"
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            return (
                f"the Hub refused to write to {repo_id} (HTTP {status}): log in with `hf auth login` or set "
                f"HF_TOKEN to a token with write access to that namespace {checked}"
            )
        return f"the Hub refused the push to {repo_id}: {err} {checked}"
    return f"could not reach the Hub at {constants.ENDPOINT}: {err} {checked}"

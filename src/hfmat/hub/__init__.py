"""Hub machinery shared by every hfmat artifact: cards from ``model_cards/`` templates, folder checks,
``hfmat push``, offline-friendly resolution of repo ids and loading with clear errors."""

from hfmat.hub.cards import CITATIONS, citations, dataset_repo_id, eval_results, render_card, templates_dir
from hfmat.hub.errors import (
    CardError,
    CorruptWeightsError,
    HubError,
    IncompatibleArtifactError,
    IncompleteArtifactError,
    NotCachedError,
)
from hfmat.hub.layout import KINDS, Artifact, check_card, check_folder, detect_kind, list_files
from hfmat.hub.loading import explain_failure, load, missing_classes
from hfmat.hub.push import PushResult, push_folder
from hfmat.hub.resolve import resolve
from hfmat.hub.versions import installed_versions, saved_versions, version_mismatches
from hfmat.hub.weights import check_safetensors, check_weights

__all__ = [
    "CITATIONS",
    "KINDS",
    "Artifact",
    "CardError",
    "CorruptWeightsError",
    "HubError",
    "IncompatibleArtifactError",
    "IncompleteArtifactError",
    "NotCachedError",
    "PushResult",
    "check_card",
    "check_folder",
    "check_safetensors",
    "check_weights",
    "citations",
    "dataset_repo_id",
    "detect_kind",
    "eval_results",
    "explain_failure",
    "installed_versions",
    "list_files",
    "load",
    "missing_classes",
    "push_folder",
    "render_card",
    "resolve",
    "saved_versions",
    "templates_dir",
    "version_mismatches",
]

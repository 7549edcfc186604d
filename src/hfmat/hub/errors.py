"""Errors raised by :mod:`hfmat.hub`. All are ``ValueError`` subclasses, so hfmat's CLIs print them
as a one-line message instead of a traceback."""

from __future__ import annotations


class HubError(ValueError):
    """Base class of every error in :mod:`hfmat.hub`."""


class CardError(HubError):
    """A model or dataset card cannot be rendered, or a rendered card lacks what the Hub needs."""


class IncompleteArtifactError(HubError):
    """A folder is not a complete Hub repository of its kind; ``missing`` lists what is absent."""

    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


class CorruptWeightsError(HubError):
    """A weights file is truncated or its safetensors header cannot be read."""


class NotCachedError(HubError):
    """A repo id is not in the local Hugging Face cache and the Hub cannot be reached."""


class IncompatibleArtifactError(HubError):
    """A saved folder failed to load and was written by other library versions than the installed ones."""

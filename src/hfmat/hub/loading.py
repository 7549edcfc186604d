"""``load(loader, name_or_path)``: ``from_pretrained`` through :func:`resolve`, with the weights
checked first and a load failure explained by the library versions that saved the folder.

    from transformers import AutoModelForCausalLM
    from hfmat.hub import load
    model = load(AutoModelForCausalLM, "hfmat/cif-gpt2-perov5")
"""

from __future__ import annotations

import os
from typing import Any

from hfmat.hub.errors import IncompatibleArtifactError
from hfmat.hub.resolve import resolve
from hfmat.hub.versions import version_mismatches
from hfmat.hub.weights import check_weights


def load(loader: Any, name_or_path: str | os.PathLike, *, revision: str | None = None, **kwargs: Any):
    """``loader.from_pretrained(local_folder, **kwargs)`` for a repo id or a folder.

    Errors: :class:`NotCachedError` (repo id neither cached nor reachable),
    :class:`CorruptWeightsError` (a truncated ``*.safetensors``, named), and
    :class:`IncompatibleArtifactError` when loading fails and the folder was saved by other
    versions of hfmat / transformers / diffusers than the installed ones (it names them).
    """
    folder = resolve(name_or_path, revision=revision)
    check_weights(folder)
    try:
        return loader.from_pretrained(folder, **kwargs)
    except Exception as err:
        mismatches = version_mismatches(folder)
        if not mismatches:
            raise
        differ = ", ".join(
            f"{lib} {saved} (installed: {now})" for lib, (saved, now) in sorted(mismatches.items())
        )
        pins = " ".join(f"'{lib}=={saved}'" for lib, (saved, _) in sorted(mismatches.items()))
        name = getattr(loader, "__name__", type(loader).__name__)
        raise IncompatibleArtifactError(
            f"{name} could not load {name_or_path} ({type(err).__name__}: {err}). It was saved by {differ}: "
            f"load it with those versions (pip install {pins}) and re-save it with the installed ones"
        ) from err

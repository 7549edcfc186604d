"""The warning ``hfmat generate`` and ``hfmat diffuse`` print for a prompt outside what the model
was trained on (``hfmat.scope``)."""

from __future__ import annotations

from hfmat.scope import out_of_scope, training_scope


def warn_out_of_scope(command: str, folder, compositions) -> list[str]:
    """Print one warning per distinct composition outside the model's training scope; returns them."""
    import sys

    scope = training_scope(folder)
    if scope is None or not compositions:
        return []
    warnings = []
    for comp in dict.fromkeys(compositions):
        why = out_of_scope(scope, comp)
        if why:
            warnings.append(why)
            print(f"hfmat {command}: warning: {why}", file=sys.stderr)
    return warnings

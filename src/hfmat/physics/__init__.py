"""Physics of crystals with universal ML potentials: relaxation, energies, stability.

Needs the optional extra ``pip install "hfmat[physics]"`` (CHGNet and SevenNet, whose pretrained
weights ship inside their wheels, so everything runs offline). Importing ``hfmat.physics`` is cheap;
the potentials load on first use.

- :func:`relax` / :func:`energies` (``hfmat.physics.relaxation``): batched relaxation and single points;
- :mod:`hfmat.physics.hull`: energy above a convex hull of the *potential's* energies over a
  reference set (never the Materials Project's DFT hull);
- :func:`load_potential`: ``"chgnet"`` (CHGNet 0.3.0) or ``"sevennet"`` (SevenNet-0).
"""

from __future__ import annotations

import importlib

from hfmat.extras import MissingExtraError

_LAZY = {
    "relax": "hfmat.physics.relaxation",
    "energies": "hfmat.physics.relaxation",
    "RelaxResult": "hfmat.physics.relaxation",
    "SinglePoint": "hfmat.physics.relaxation",
    "load_potential": "hfmat.physics.potentials",
    "Potential": "hfmat.physics.potentials",
    "Prediction": "hfmat.physics.potentials",
    "e_above_hull": "hfmat.physics.hull",
    "reference_hull": "hfmat.physics.hull",
}

__all__ = ["MissingExtraError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfmat.physics' has no attribute {name!r}")

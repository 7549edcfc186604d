"""Metrics for crystal structure prediction and de novo generation, computed the way CDVAE,
DiffCSP and CrystaLLM compute them, and the ``hfmat evaluate`` pipeline.

- :func:`csp_metrics`: match rate and RMSE (StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)).
- :func:`generation_metrics`: validity, COV-R / COV-P, Wasserstein distances, uniqueness, novelty.
- :func:`validity_summary`: the CIF codec's validity reports, per check.
- :func:`smact_valid`: SMACT compositional validity.

Submodules import on first use (matminer takes seconds to import).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "csp_metrics": "hfmat.evaluation.csp",
    "generation_metrics": "hfmat.evaluation.generation",
    "coverage": "hfmat.evaluation.generation",
    "validity_summary": "hfmat.evaluation.validity",
    "smact_valid": "hfmat.evaluation.composition",
    "evaluate": "hfmat.evaluation.pipeline",
    "PairCache": "hfmat.evaluation.matching",
    "PUBLISHED_CSP": "hfmat.evaluation.reference",
    "PUBLISHED_GENERATION": "hfmat.evaluation.reference",
    "COV_CUTOFFS": "hfmat.evaluation.reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hfmat.evaluation' has no attribute {name!r}")

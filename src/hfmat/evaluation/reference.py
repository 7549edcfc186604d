"""Published figures hfmat is compared with, and the per-dataset COV thresholds.

CSP: match rate (%) / RMSE with StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3), from the
CDVAE, DiffCSP and CrystaLLM papers (the table in the project design notes, DESIGN.md). Generation:
DiffCSP's ab-initio generation on MP-20. COV thresholds: CDVAE's ``COV_Cutoffs``
(scripts/compute_metrics.py): structure fingerprint distance / normalised Magpie distance.
"""

from __future__ import annotations

#: dataset -> k -> model -> (match rate %, RMSE)
PUBLISHED_CSP: dict[str, dict[int, dict[str, tuple[float, float]]]] = {
    "perov_5": {
        1: {"CDVAE": (45.31, 0.1138), "DiffCSP": (52.02, 0.0760)},
        20: {"CDVAE": (88.51, 0.0464), "DiffCSP": (98.60, 0.0128)},
    },
    "carbon_24": {  # DiffCSP (Jiao et al., NeurIPS 2023, arXiv:2309.04475) Table 1
        1: {"CDVAE": (17.09, 0.2969), "DiffCSP": (17.54, 0.2759)},
        20: {"CDVAE": (88.37, 0.2286), "DiffCSP": (88.47, 0.2192)},
    },
    "mp_20": {
        1: {"CDVAE": (33.90, 0.1045), "DiffCSP": (51.49, 0.0631), "CrystaLLM large": (58.70, 0.0408)},
        20: {"CDVAE": (66.95, 0.1026), "DiffCSP": (77.93, 0.0492), "CrystaLLM large": (73.97, 0.0349)},
    },
    "mpts_52": {
        1: {"CDVAE": (5.34, 0.2106), "DiffCSP": (12.19, 0.1786), "CrystaLLM large": (19.21, 0.1110)},
        20: {"CDVAE": (20.79, 0.2085), "DiffCSP": (34.02, 0.1749), "CrystaLLM large": (33.75, 0.1059)},
    },
}

#: dataset -> model -> metric -> value (validity and COV in %)
PUBLISHED_GENERATION: dict[str, dict[str, dict[str, float]]] = {
    "mp_20": {
        "DiffCSP": {
            "structural_validity": 100.0,
            "compositional_validity": 83.25,
            "cov_recall": 99.71,
            "cov_precision": 99.76,
            "wdist_density": 0.3502,
            "wdist_num_elements": 0.3398,
        }
    }
}

#: CDVAE's thresholds: structure fingerprint distance, normalised composition fingerprint distance.
COV_CUTOFFS: dict[str, dict[str, float]] = {
    "mp_20": {"struc": 0.4, "comp": 10.0},
    "perov_5": {"struc": 0.2, "comp": 4.0},
    "carbon_24": {"struc": 0.2, "comp": 4.0},
}

_ALIASES = {
    "mp20": "mp_20",
    "mp_20_subset": "mp_20",
    "perov": "perov_5",
    "perovskite": "perov_5",
    "carbon": "carbon_24",
    "mpts52": "mpts_52",
}


def canonical_dataset(name: str | None) -> str | None:
    """``mp20``, ``mp_20_subset``, ``perovskite``, a path with such a folder or file name in it
    (``data/perov_5/test.csv``) ... -> ``mp_20`` etc.; None when no benchmark dataset is named."""
    if not name:
        return None
    parts = str(name).replace("\\", "/").rstrip("/").split("/")
    for part in reversed(parts):
        key = part.lower().replace("-", "_")
        key = key.rsplit(".", 1)[0] if "." in key else key
        key = _ALIASES.get(key, key)
        if key in PUBLISHED_CSP or key in COV_CUTOFFS:
            return key
    return None

"""Crystal datasets on the `datasets` library: loaders, Hub layout, featurization, collators.

```python
from hfmat.data import load_crystal_dataset, featurize_lm, CausalLMCollator
ds = load_crystal_dataset("perov_5", data_dir="/path/to/cdvae/data")   # DatasetDict: train/val/test
lm = featurize_lm(ds, tokenizer, max_length=1024, num_proc=2)          # canonical_cif, input_ids
```

Names are imported lazily, so ``import hfmat.data.graph`` does not pull in transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "hfmat.data.catalog": ["BENCHMARKS", "SPLIT_FILES", "Benchmark"],
    "hfmat.data.collators": ["CausalLMCollator", "CifLMCollator"],
    "hfmat.data.errors": ["DataError", "DataNotFoundError", "DataStats", "DataWarning", "SplitStats"],
    "hfmat.data.featurize": ["add_canonical_cif", "featurize_diffusion", "featurize_lm", "tokenize_cifs"],
    "hfmat.data.graph": ["GraphCollator", "GraphError", "graph_to_structure", "structure_to_graph"],
    "hfmat.data.hub_layout": ["to_hub_layout"],
    "hfmat.data.loaders": ["NORMALISED_COLUMNS", "load_crystal_dataset", "parse_cif"],
    "hfmat.data.sources": ["load_sources"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "CausalLMCollator",
    "CifLMCollator",
    "DataError",
    "DataNotFoundError",
    "DataStats",
    "DataWarning",
    "GraphCollator",
    "GraphError",
    "NORMALISED_COLUMNS",
    "SPLIT_FILES",
    "SplitStats",
    "add_canonical_cif",
    "featurize_diffusion",
    "featurize_lm",
    "graph_to_structure",
    "load_crystal_dataset",
    "load_sources",
    "parse_cif",
    "structure_to_graph",
    "to_hub_layout",
    "tokenize_cifs",
]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hfmat.data' has no attribute {name!r}")


if TYPE_CHECKING:
    from hfmat.data.catalog import BENCHMARKS, SPLIT_FILES, Benchmark
    from hfmat.data.collators import CausalLMCollator, CifLMCollator
    from hfmat.data.errors import DataError, DataNotFoundError, DataStats, DataWarning, SplitStats
    from hfmat.data.featurize import add_canonical_cif, featurize_diffusion, featurize_lm, tokenize_cifs
    from hfmat.data.graph import GraphCollator, GraphError, graph_to_structure, structure_to_graph
    from hfmat.data.hub_layout import to_hub_layout
    from hfmat.data.loaders import NORMALISED_COLUMNS, load_crystal_dataset, parse_cif
    from hfmat.data.sources import load_sources

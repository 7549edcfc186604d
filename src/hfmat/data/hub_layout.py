"""Write a DatasetDict as a Hub-style dataset folder: parquet files plus a README.md dataset card.

Layout written by :func:`to_hub_layout`::

    out_dir/
      README.md                         dataset card; its YAML lists configs -> data_files per split
      data/<split>-00000-of-00001.parquet

``datasets.load_dataset(out_dir)`` reads it back (the YAML ``configs`` name the files of each
split), ``load_crystal_dataset(out_dir)`` too, and ``huggingface_hub.upload_folder`` publishes it
unchanged as a dataset repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import DatasetDict, DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCardData

from hfmat.data.catalog import BENCHMARKS
from hfmat.data.errors import DataError

_COLUMN_DOCS = {
    "material_id": "identifier of the structure in its source",
    "cif": "CIF text as given by the source",
    "formula": "reduced formula (pymatgen)",
    "num_atoms": "number of sites in the cell",
    "spacegroup": "international space-group number",
    "canonical_cif": "hfmat canonical CIF text (docs/cif_format.md)",
    "input_ids": "token ids of <bos> + canonical CIF + <eos>",
    "atom_types": "atomic numbers, Niggli-reduced cell",
    "frac_coords": "fractional coordinates in [0, 1), Niggli-reduced cell",
    "lattice": "3x3 lattice matrix in Angstrom, rows are lattice vectors (Niggli-reduced)",
}


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return label
    return "1M<n<10M"


def to_hub_layout(
    dataset_dict: DatasetDict,
    out_dir: str | os.PathLike,
    name: str,
    *,
    repo_id: str | None = None,
    source: str | None = None,
    license: str | None = None,
    description: str | None = None,
    notes: str | None = None,
    limitations: str | None = None,
) -> Path:
    """Write ``dataset_dict`` under ``out_dir`` as parquet + README.md card; returns the card's path.

    The card is ``model_cards/dataset.md`` filled through :func:`hfmat.hub.render_card`; its
    snippets name ``repo_id`` (default ``hfmat/<name>`` for a benchmark, ``my-org/<name>``
    otherwise; ``hfmat push`` rewrites them for the repository it pushes to). ``source`` /
    ``license`` / ``description`` default to the benchmark catalogue entry when ``name`` is a
    benchmark, else to what the loader stored in the splits' ``DatasetInfo``; the license is
    ``unknown`` when none is known. ``notes`` is a free paragraph added to the card (e.g. that the
    splits are partial); ``limitations`` a paragraph of its own.
    """
    from hfmat.hub import citations, dataset_repo_id, render_card

    if not isinstance(dataset_dict, DatasetDict) or len(dataset_dict) == 0:
        raise DataError("to_hub_layout expects a non-empty datasets.DatasetDict")
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    first = next(iter(dataset_dict.values()))
    meta = BENCHMARKS.get(name)
    source = source or (meta.source if meta else None) or first.info.homepage or "unknown"
    license = license or (meta.license if meta else None) or first.info.license or "unknown"
    description = description or (meta.description if meta else None) or first.info.description or ""
    repo_id = repo_id or dataset_repo_id(name, org="hfmat" if meta else "my-org")

    data_files, splits, num_bytes = [], SplitDict(dataset_name=name), 0
    for split, dataset in dataset_dict.items():
        relative = f"data/{split}-00000-of-00001.parquet"
        dataset.to_parquet(str(out / relative))
        size = (out / relative).stat().st_size
        num_bytes += size
        data_files.append({"split": split, "path": relative})
        splits[split] = SplitInfo(name=split, num_bytes=size, num_examples=len(dataset), dataset_name=name)

    card_data = DatasetCardData(
        license=license,
        pretty_name=meta.pretty_name if meta else name,
        size_categories=_size_category(sum(len(d) for d in dataset_dict.values())),
        tags=["crystals", "materials", "cif", "hfmat"],
    )
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    info = DatasetInfo(
        features=first.features, splits=splits, dataset_size=num_bytes, download_size=num_bytes
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)

    columns = {
        column: (
            getattr(feature, "dtype", None) or type(feature).__name__,
            _COLUMN_DOCS.get(column, "property from the source"),
        )
        for column, feature in first.features.items()
    }
    card = render_card(
        "dataset",
        metadata=card_data.to_dict(),
        repo_id=repo_id,
        description=description,
        source=source,
        license_note=meta.license_note if meta else None,
        target_property=meta.target_property if meta else None,
        splits={split: len(dataset) for split, dataset in dataset_dict.items()},
        standard_splits=meta.standard_splits if meta else None,
        notes=notes,
        columns=columns,
        limitations=limitations,
        citation=citations("cdvae") if meta else None,
    )
    path = out / "README.md"
    card.save(path)
    return path

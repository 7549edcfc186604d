"""Featurization of crystal datasets with ``Dataset.map`` (batched, ``num_proc``, cached).

Language model (:func:`featurize_lm`), two cached steps:

1. ``canonical_cif``: :func:`hfmat.cif.structure_to_cif` of the parsed ``cif`` column
   (``symprec``, ``decimals``; docs/cif_format.md).
2. ``input_ids``: ``<bos>`` + tokens of the canonical CIF + ``<eos>``
   (:func:`hfmat.tokenization.encode_for_training`) and ``length`` (their number).

Diffusion (:func:`featurize_diffusion`): ``atom_types``, ``frac_coords``, ``lattice`` and
``num_atoms`` of the Niggli-reduced cell, as documented in :mod:`hfmat.data.graph`.

Every step runs under an explicit fingerprint (input fingerprint, parameters, tokenizer
vocabulary, source code of the hfmat modules involved), so a second run on the same data reads
datasets' cache instead of recomputing. Rows that fail (a CIF that does not parse or cannot be
symmetrized, a disordered structure, text the tokenizer maps to ``<unk>``, more than
``max_length`` tokens) are dropped, counted and listed by id in a :class:`DataWarning` and in the
statistics returned with ``return_stats=True``.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, DatasetDict, List, Value
from datasets.fingerprint import Hasher

from hfmat.data.errors import DataError, warn_skipped
from hfmat.data.graph import GraphError, structure_to_graph
from hfmat.data.loaders import parse_cif
from hfmat.data.mapping import ERROR_COLUMN, map_skipping_bad_rows

LM_COLUMNS = ("canonical_cif", "input_ids", "length")
GRAPH_COLUMNS = ("atom_types", "frac_coords", "lattice", "num_atoms")

_FEATURES = {
    "canonical_cif": {"canonical_cif": Value("string")},
    "tokenize": {"input_ids": List(Value("int32")), "length": Value("int64")},
    "graph": {
        "atom_types": List(Value("int64")),
        "frac_coords": List(List(Value("float64"))),
        "lattice": List(List(Value("float64"))),
        "num_atoms": Value("int64"),
    },
}


def add_canonical_cif(
    data: Dataset | DatasetDict,
    *,
    symprec: float = 0.1,
    decimals: int = 4,
    num_proc: int | None = None,
    return_stats: bool = False,
):
    """Add the ``canonical_cif`` column (hfmat's canonical CIF of each row's ``cif``)."""
    params = {"symprec": symprec, "decimals": decimals}
    return _apply(
        data,
        _canonical_batch,
        "canonical_cif",
        params,
        params,
        num_proc,
        return_stats,
        ("hfmat.cif", "hfmat.data"),
    )


def tokenize_cifs(
    data: Dataset | DatasetDict,
    tokenizer=None,
    *,
    max_length: int | None = None,
    num_proc: int | None = None,
    column: str = "canonical_cif",
    return_stats: bool = False,
):
    """Add ``input_ids`` (``<bos>`` + tokens of ``column`` + ``<eos>``) and ``length``.

    ``tokenizer`` defaults to :func:`hfmat.tokenization.load_tokenizer`. Rows with more than
    ``max_length`` ids, or with an ``<unk>`` id, are skipped.
    """
    if tokenizer is None:
        from hfmat.tokenization import load_tokenizer

        tokenizer = load_tokenizer()
    _check_special_tokens(tokenizer)
    params = {
        "vocab": Hasher.hash(tokenizer.backend_tokenizer.to_str()),
        "specials": (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id),
        "max_length": max_length,
        "column": column,
    }
    fn_kwargs = {"tokenizer": tokenizer, "max_length": max_length, "column": column}
    return _apply(
        data,
        _tokenize_batch,
        "tokenize",
        params,
        fn_kwargs,
        num_proc,
        return_stats,
        ("hfmat.tokenization", "hfmat.data"),
    )


def featurize_lm(
    data: Dataset | DatasetDict,
    tokenizer=None,
    *,
    symprec: float = 0.1,
    decimals: int = 4,
    max_length: int | None = None,
    num_proc: int | None = None,
    return_stats: bool = False,
):
    """:func:`add_canonical_cif` then :func:`tokenize_cifs`; stats hold both steps' skipped rows."""
    data, first = add_canonical_cif(
        data, symprec=symprec, decimals=decimals, num_proc=num_proc, return_stats=True
    )
    data, second = tokenize_cifs(data, tokenizer, max_length=max_length, num_proc=num_proc, return_stats=True)
    if not return_stats:
        return data
    for split, stats in second.items():
        first[split].rows_kept = stats.rows_kept
        first[split].skipped.update(stats.skipped)
    return data, first


def featurize_diffusion(
    data: Dataset | DatasetDict, *, num_proc: int | None = None, return_stats: bool = False
):
    """Add ``atom_types``, ``frac_coords``, ``lattice`` and ``num_atoms`` (Niggli-reduced cell)."""
    return _apply(data, _graph_batch, "graph", {}, {}, num_proc, return_stats, ("hfmat.data",))


# --------------------------------------------------------------------------------------------------


def _apply(data, function, step, params, fn_kwargs, num_proc, return_stats, packages):
    single = isinstance(data, Dataset)
    if not single and not isinstance(data, DatasetDict):
        raise DataError(f"expected a datasets.Dataset or DatasetDict, got {type(data).__name__}")
    splits = {"data": data} if single else dict(data)
    out, stats = {}, {}
    for split, dataset in splits.items():
        if "cif" not in dataset.column_names and step in ("canonical_cif", "graph"):
            raise DataError(
                f"{step}: split {split!r} has no 'cif' column; columns are {dataset.column_names}"
            )
        if step == "tokenize" and fn_kwargs["column"] not in dataset.column_names:
            raise DataError(
                f"tokenize: split {split!r} has no {fn_kwargs['column']!r} column "
                f"(run add_canonical_cif first); columns are {dataset.column_names}"
            )
        out[split], stats[split] = map_skipping_bad_rows(
            dataset,
            function,
            step=step,
            params=params,
            packages=packages,
            fn_kwargs=fn_kwargs,
            num_proc=num_proc,
            new_features=_FEATURES[step],
        )
        warn_skipped(step, split, stats[split])
    result = out["data"] if single else DatasetDict(out)
    return (result, stats) if return_stats else result


def _check_special_tokens(tokenizer) -> None:
    for name in ("bos_token_id", "eos_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise DataError(f"the tokenizer has no {name[:-3]}; LM training text is <bos> + CIF + <eos>")


def _canonical_batch(batch: dict[str, list], *, symprec: float, decimals: int) -> dict[str, list]:
    from hfmat.cif import CifError, structure_to_cif

    texts, errors = [], []
    for text in batch["cif"]:
        structure, error = parse_cif(text)
        canonical = ""
        if structure is not None:
            try:
                canonical = structure_to_cif(structure, symprec=symprec, decimals=decimals)
            except CifError as err:
                error = f"canonical CIF failed: {err}"
        texts.append(canonical)
        errors.append(error)
    return {"canonical_cif": texts, ERROR_COLUMN: errors}


def _tokenize_batch(
    batch: dict[str, list], *, tokenizer, max_length: int | None, column: str
) -> dict[str, Any]:
    from hfmat.tokenization import encode_for_training

    ids = encode_for_training(tokenizer, batch[column])
    unk = tokenizer.unk_token_id
    errors = []
    for row in ids:
        if unk is not None and unk in row:
            errors.append(f"text encodes to <unk> at token {row.index(unk)}")
        elif max_length is not None and len(row) > max_length:
            errors.append(f"{len(row)} tokens > max_length={max_length}")
        else:
            errors.append("")
    return {"input_ids": ids, "length": [len(row) for row in ids], ERROR_COLUMN: errors}


def _graph_batch(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {key: [] for key in (*GRAPH_COLUMNS, ERROR_COLUMN)}
    for text in batch["cif"]:
        structure, error = parse_cif(text)
        graph = None
        if structure is not None:
            try:
                graph = structure_to_graph(structure)
            except GraphError as err:
                error = str(err)
        if graph is None:
            graph = {"atom_types": [], "frac_coords": [], "lattice": [[0.0] * 3] * 3, "num_atoms": 0}
        for key in GRAPH_COLUMNS:
            out[key].append(graph[key])
        out[ERROR_COLUMN].append(error)
    return out

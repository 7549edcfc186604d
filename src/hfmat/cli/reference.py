"""``--reference DATASET:SPLIT`` and ``--data-dir`` as the CLI reads them: where the benchmark's
files are by default, and the (material_id, cell composition) of the rows to prompt with."""

from __future__ import annotations

from pathlib import Path

#: Where a benchmark's CSVs are looked for when --data-dir is not given, relative to the current
#: directory (a clone of hfmat beside the shared data folder).
DEFAULT_DATA_ROOT = Path("..") / "shared" / "data"


def data_dir_for(reference: str, data_dir: str | None, flag: str = "--reference") -> str | None:
    """``data_dir`` if given; for a benchmark name, ``../shared/data/NAME`` (or None when ``./NAME``
    holds it, which the loader finds itself); None for a path or repo id."""
    from hfmat.data.catalog import BENCHMARKS
    from hfmat.evaluation.io import split_source

    if data_dir is not None:
        return data_dir
    name, _ = split_source(reference)
    if name not in BENCHMARKS:
        return None
    default = DEFAULT_DATA_ROOT / name
    if default.is_dir():
        return str(default)
    if Path(name).is_dir():
        return None
    raise ValueError(
        f"{flag} {reference}: no --data-dir given and {default} (the default) does not exist; pass "
        f"--data-dir FOLDER, the folder holding {name}'s CDVAE CSVs (train.csv, val.csv, test.csv)"
    )


def reference_prompts(reference: str, data_dir: str | None, limit: int | None) -> list[tuple[str, str]]:
    """``(material_id, cell formula)`` of the first ``limit`` rows of the reference split, the formula
    with every count written (``Sr1Ti1O3``: the cell's content, as the models' prompts take it)."""
    from hfmat.cif import cif_to_structure
    from hfmat.evaluation.io import load_reference

    ids, cifs = load_reference(reference, data_dir=data_dir_for(reference, data_dir))
    rows = list(zip(ids, cifs))[: limit if limit is not None else None]
    if not rows:
        raise ValueError(f"--reference {reference} has no rows")
    prompts = []
    for mid, cif in rows:
        try:
            structure = cif_to_structure(cif)
        except ValueError as err:
            raise ValueError(f"--reference {reference}: row {mid} has no readable structure: {err}") from None
        prompts.append((mid, structure.composition.formula.replace(" ", "")))
    return prompts


def prompts_from_args(args) -> tuple[list[str] | None, list[str | None]]:
    """(cell compositions to prompt with, the reference material_id of each) from --composition or
    --reference/--data-dir/--limit; (None, []) when neither is given."""
    if args.reference and args.composition:
        raise ValueError("give --composition or --reference, not both")
    if args.limit is not None and not args.reference:
        raise ValueError("--limit needs --reference")
    if args.reference:
        rows = reference_prompts(args.reference, args.data_dir, args.limit)
        return [c for _, c in rows], [m for m, _ in rows]
    return args.composition, [None] * len(args.composition or [])

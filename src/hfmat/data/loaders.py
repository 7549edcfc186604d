"""Load crystal datasets as ``datasets.DatasetDict`` with normalised columns.

Sources understood by :func:`load_crystal_dataset`:

- a benchmark name (``mp_20``, ``perov_5``, ``carbon_24``, ``mpts_52``) with ``data_dir`` holding
  the CDVAE-layout CSVs ``train.csv`` / ``val.csv`` / ``test.csv`` (any subset of them; ``data_dir``
  may also be their parent holding ``<name>/``). Split names are the file stems: train, val, test.
- a folder of ``.cif`` files (split ``train``), or of sub-folders of ``.cif`` files (one split per
  sub-folder, named after it); ``material_id`` is the file name without ``.cif`` (a file with
  several data blocks holding atom sites gives one row per block: ``<name>#<data_ name>``).
- a Hub-style dataset folder (a README.md whose YAML lists ``configs``, or plain data files that
  ``datasets.load_dataset(folder)`` understands), e.g. one written by :func:`to_hub_layout`.
- a single ``.csv`` / ``.parquet`` file (split ``train``).
- a dataset repo id (``org/name``) already in the local Hugging Face cache; nothing is downloaded.

Every split gets these columns, followed by the source's other columns (its properties):

- ``material_id`` (string): the source's id, or the CIF file name.
- ``cif`` (string): the CIF text as given.
- ``formula`` (string): pymatgen's reduced formula of the parsed structure. It replaces the
  source's ``formula`` / ``pretty_formula`` column (same composition, pymatgen's element order).
- ``num_atoms`` (int): sites in the cell as given.
- ``spacegroup`` (int): the source's ``spacegroup`` / ``spacegroup.number`` when present, otherwise
  spglib's number at ``symprec`` (0.1, as in the canonical CIF).

Every CIF is read by :func:`hfmat.cif.cif_to_structure` (hfmat's canonical files expanded whole;
cells that would crash spglib refused). The unnamed pandas index column of the CDVAE CSVs is
dropped. Rows whose CIF is empty or does not parse are skipped, listed by id in a :class:`DataWarning` and in the statistics returned with
``return_stats=True``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, Value, load_dataset

from hfmat.data.catalog import BENCHMARKS, SPLIT_FILES
from hfmat.data.errors import DataError, DataNotFoundError, DataStats, DataWarning, SplitStats, warn_skipped
from hfmat.data.mapping import ERROR_COLUMN, map_skipping_bad_rows

NORMALISED_COLUMNS = ("material_id", "cif", "formula", "num_atoms", "spacegroup")
_FORMULA_COLUMNS = ("formula", "pretty_formula")
_SPACEGROUP_COLUMNS = ("spacegroup", "spacegroup.number", "spacegroup_number", "space_group")
_DATA_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl", ".arrow", ".txt")
_REPO_ID = re.compile(r"^[\w.\-]+/[\w.\-]+$")


def load_crystal_dataset(
    source: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    splits: list[str] | None = None,
    symprec: float = 0.1,
    num_proc: int | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    validate: bool | None = None,
    return_stats: bool = False,
) -> DatasetDict | tuple[DatasetDict, DataStats]:
    """Load ``source`` (see the module docstring) as a DatasetDict with normalised columns.

    ``splits`` keeps only those splits (an error names any that is missing). ``validate`` parses
    every CIF (default: yes, except for a dataset that already has all normalised columns, such as
    one written by :func:`to_hub_layout`). ``num_proc`` parallelises parsing. With
    ``return_stats=True`` returns ``(dataset_dict, stats)``, where ``stats[split]`` lists the
    skipped rows by id with the reason.
    """
    raw, info = _load_raw(source, data_dir, revision=revision, cache_dir=cache_dir)
    if splits is not None:
        missing = [s for s in splits if s not in raw]
        if missing:
            raise DataNotFoundError(f"split(s) {missing} not found in {source!s}; it has {sorted(raw)}")
        raw = DatasetDict({s: raw[s] for s in splits})
    out, stats = DatasetDict(), {}
    for split, dataset in raw.items():
        out[split], stats[split] = normalise(dataset, symprec=symprec, num_proc=num_proc, validate=validate)
        warn_skipped(f"load {source!s}", split, stats[split])
        for key, value in info.items():
            setattr(out[split].info, key, value)
    return (out, stats) if return_stats else out


def normalise(
    dataset: Dataset, *, symprec: float = 0.1, num_proc: int | None = None, validate: bool | None = None
) -> tuple[Dataset, SplitStats]:
    """Normalise one split's columns (see the module docstring); returns ``(dataset, SplitStats)``."""
    columns = dataset.column_names
    if "cif" not in columns:
        raise DataError(f"expected a 'cif' column holding CIF text; found columns {columns}")
    drop = [c for c in columns if c.startswith("Unnamed: ") or c in ("", "__index_level_0__")]
    if drop:
        dataset = dataset.remove_columns(drop)
    if "material_id" not in dataset.column_names:
        dataset = dataset.add_column("material_id", [f"row-{i}" for i in range(len(dataset))])
    elif dataset.features["material_id"] != Value("string"):
        dataset = dataset.cast_column("material_id", Value("string"))
    if validate is None:
        validate = not all(c in dataset.column_names for c in NORMALISED_COLUMNS)
    if not validate:
        return _order_columns(dataset), SplitStats(rows_in=len(dataset), rows_kept=len(dataset))
    sg_column = next((c for c in _SPACEGROUP_COLUMNS if c in dataset.column_names), None)
    replaced = [c for c in (*_FORMULA_COLUMNS, sg_column) if c and c in dataset.column_names]
    dataset, stats = map_skipping_bad_rows(
        dataset,
        _normalise_batch,
        step="normalise",
        params={"symprec": symprec, "sg_column": sg_column},
        fn_kwargs={"symprec": symprec, "sg_column": sg_column},
        num_proc=num_proc,
        remove_columns=[c for c in replaced if c not in NORMALISED_COLUMNS],
    )
    return _order_columns(dataset), stats


def _order_columns(dataset: Dataset) -> Dataset:
    rest = [c for c in dataset.column_names if c not in NORMALISED_COLUMNS]
    return dataset.select_columns([*NORMALISED_COLUMNS, *rest])


def _normalise_batch(batch: dict[str, list], *, symprec: float, sg_column: str | None) -> dict[str, list]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    out: dict[str, list] = {
        "material_id": [],
        "formula": [],
        "num_atoms": [],
        "spacegroup": [],
        ERROR_COLUMN: [],
    }
    given_sg = batch[sg_column] if sg_column else [None] * len(batch["cif"])
    for mid, text, sg in zip(batch["material_id"], batch["cif"], given_sg):
        out["material_id"].append("" if mid is None else str(mid))
        structure, error = parse_cif(text)
        if sg is not None and not _is_number(sg):
            sg = None  # a missing value in the source's column: compute it
        if structure is not None and sg is None:
            try:
                sg = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
            except Exception as err:  # spglib failures on degenerate cells
                error = f"space-group analysis failed: {err}"
        out["formula"].append(structure.composition.reduced_formula if structure is not None else "")
        out["num_atoms"].append(len(structure) if structure is not None else 0)
        out["spacegroup"].append(int(float(sg)) if sg is not None and error == "" else 0)
        out[ERROR_COLUMN].append(error)
    return out


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value)) and 1 <= int(float(value)) <= 230
    except (TypeError, ValueError):
        return False


def parse_cif(text: str | None):
    """``(Structure, "")`` for a CIF text, or ``(None, reason)`` when it is empty or unparseable.

    Every text goes through :func:`hfmat.cif.cif_to_structure`: hfmat's canonical CIFs are
    expanded from their space group (pymatgen alone would read only their asymmetric unit), and
    a structure that would crash spglib (a NaN or degenerate cell) is refused here, before any
    C extension sees it. Disordered structures are kept (the featurizers skip them)."""
    from hfmat.cif import CifError, cif_to_structure

    if text is None or not str(text).strip():
        return None, "empty CIF"
    try:
        structure = cif_to_structure(str(text), disorder=True)
    except CifError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "CifError"
        return None, f"unparseable CIF ({first[:160]})"
    return structure, ""


# --------------------------------------------------------------------------------------------------
# raw sources


def _load_raw(source, data_dir, *, revision, cache_dir) -> tuple[DatasetDict, dict[str, str]]:
    name = str(source)
    if name in BENCHMARKS:
        if data_dir is None and Path(name).is_dir():  # ./perov_5 holding the CSVs
            data_dir = "."
        if data_dir is None:
            raise DataNotFoundError(
                f"benchmark {name!r} needs data_dir= pointing at its CDVAE-layout CSVs "
                f"({', '.join(SPLIT_FILES.values())}); nothing is downloaded"
            )
        meta = BENCHMARKS[name]
        info = {"description": meta.description, "homepage": meta.source, "license": meta.license}
        return _load_benchmark_csvs(name, Path(data_dir), cache_dir), info
    path = Path(source)
    if data_dir is not None and not path.exists() and not _REPO_ID.match(name):
        raise DataError(f"data_dir= is only for benchmark names {sorted(BENCHMARKS)}; got source {name!r}")
    if path.exists():
        if data_dir is not None:
            path = path / data_dir
        return _load_path(path, cache_dir), {"homepage": str(path)}
    if _REPO_ID.match(name):
        folder = _cached_snapshot(name, revision)
        if data_dir is not None:
            folder = folder / data_dir
        return _load_path(folder, cache_dir), {"homepage": f"https://huggingface.co/datasets/{name}"}
    raise DataNotFoundError(
        f"{name!r} is not a benchmark name ({', '.join(sorted(BENCHMARKS))}), an existing file or "
        "folder, or a dataset repo id of the form org/name"
    )


def _load_benchmark_csvs(name: str, data_dir: Path, cache_dir) -> DatasetDict:
    if not data_dir.is_dir():
        raise DataNotFoundError(f"data_dir {data_dir} for benchmark {name!r} is not a folder")
    folder = data_dir / name if (data_dir / name).is_dir() else data_dir
    files = {split: folder / fname for split, fname in SPLIT_FILES.items() if (folder / fname).is_file()}
    if not files:
        raise DataNotFoundError(
            f"no {', '.join(SPLIT_FILES.values())} found in {folder} for benchmark {name!r} "
            "(expected the CDVAE layout: one CSV per split with a 'cif' column)"
        )
    return _load_csvs(files, cache_dir)


def _load_csvs(files: dict[str, Path], cache_dir) -> DatasetDict:
    for split, file in files.items():
        header = file.open(encoding="utf-8", errors="replace").readline()
        if "cif" not in [h.strip().strip('"') for h in header.rstrip("\r\n").split(",")]:
            raise DataError(f"{file} ({split}) has no 'cif' column; its header is {header.strip()!r}")
    # material_id and cif are read as text (perov_5's ids are integers; an empty cif stays "");
    # one chunk per file keeps pandas' type inference consistent over the whole file.
    return load_dataset(
        "csv",
        data_files={split: str(file) for split, file in files.items()},
        converters={"material_id": str, "cif": str},
        chunksize=10_000_000,
        cache_dir=cache_dir,
    )


def _load_path(path: Path, cache_dir) -> DatasetDict:
    if not path.exists():
        raise DataNotFoundError(f"{path} does not exist")
    if path.is_file():
        if path.suffix == ".csv":
            return _load_csvs({"train": path}, cache_dir)
        if path.suffix == ".parquet":
            return load_dataset("parquet", data_files={"train": str(path)}, cache_dir=cache_dir)
        if path.suffix == ".cif":
            return DatasetDict({"train": _cif_files_dataset([path], cache_dir)})
        raise DataError(f"{path}: expected a .csv, .parquet or .cif file, or a folder")
    cdvae = {split: path / f for split, f in SPLIT_FILES.items() if (path / f).is_file()}
    if cdvae and not (path / "README.md").is_file():  # a CDVAE-layout folder given as a path
        return _load_csvs(cdvae, cache_dir)
    _warn_unread(path)
    direct = _cif_files(path)
    subdirs = {d.name: _cif_files(d) for d in sorted(path.iterdir()) if d.is_dir()}
    subdirs = {name: files for name, files in subdirs.items() if files}
    if direct and subdirs:
        raise DataError(
            f"{path} holds .cif files both directly and in sub-folders {sorted(subdirs)}: "
            "use one folder of .cif files, or one sub-folder per split"
        )
    if direct:
        return DatasetDict({"train": _cif_files_dataset(direct, cache_dir)})
    if subdirs:
        return DatasetDict({split: _cif_files_dataset(files, cache_dir) for split, files in subdirs.items()})
    has_data = (path / "README.md").is_file() or any(
        p.suffix in _DATA_SUFFIXES for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    if not has_data:
        raise DataNotFoundError(
            f"{path} holds no .cif files, no split sub-folders of .cif files, no README.md and no "
            f"data files ({', '.join(_DATA_SUFFIXES)})"
        )
    loaded = load_dataset(str(path), cache_dir=cache_dir)
    if not isinstance(loaded, DatasetDict):  # pragma: no cover - load_dataset without split= is a dict
        loaded = DatasetDict({"train": loaded})
    return loaded


def _cif_files(folder: Path) -> list[Path]:
    """The ``.cif`` files of ``folder``; a ``.cif`` entry that is no file (a folder, a broken link)
    is named in a DataWarning."""
    entries = sorted(folder.glob("*.cif"))
    odd = [p.name for p in entries if not p.is_file()]
    if odd:
        warnings.warn(f"{folder}: {', '.join(odd)} not read: not a file", DataWarning, stacklevel=4)
    return [p for p in entries if p.is_file()]


def _warn_unread(folder: Path) -> None:
    """A DataWarning naming the magnetic CIFs (``.mcif``) of ``folder`` and its sub-folders: only
    ``.cif`` files are read."""
    unread = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.mcif") if ".cache" not in p.parts)
    if unread:
        shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        warnings.warn(
            f"{folder}: {len(unread)} .mcif file(s) not read ({shown}); only .cif files are: rename "
            "one to .cif to read it as a plain CIF",
            DataWarning,
            stacklevel=4,
        )


def _cif_files_dataset(files: list[Path], cache_dir=None) -> Dataset:
    """The ``.cif`` files as rows (``material_id`` = file stem), through ``Dataset.from_generator``
    so the rows live in datasets' cache; sizes and mtimes are part of its fingerprint."""
    stamps = [(f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return Dataset.from_generator(
        _read_cif_files,
        gen_kwargs={"paths": [str(f) for f in files], "stamps": stamps},
        features=Features({"material_id": Value("string"), "cif": Value("string")}),
        cache_dir=cache_dir,
    )


def _read_cif_files(paths: list[str], stamps: list) -> Iterator[dict[str, str]]:
    """One row per file; a file with several data blocks that hold atom sites gives one row per
    such block, ``material_id`` ``<stem>#<data_ name>``."""
    from hfmat.cif import CifError
    from hfmat.cif.reader import structure_blocks

    for path in paths:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError as err:  # one unreadable file does not end the load: its row is skipped
            warnings.warn(
                f"{file}: could not be read ({err.strerror or err}); skipped", DataWarning, stacklevel=2
            )
            yield {"material_id": file.stem, "cif": ""}
            continue
        blocks = []
        if text.count("data_") > 1:
            try:
                blocks = structure_blocks(text)
            except CifError:
                blocks = []  # the row's parse reports it
        if len(blocks) > 1:
            yield from ({"material_id": f"{file.stem}#{name}", "cif": block} for name, block in blocks)
        else:
            yield {"material_id": file.stem, "cif": text}


def _cached_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError) as err:
        raise DataNotFoundError(
            f"dataset repo {repo_id!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); "
            f"download it first (e.g. `hf download {repo_id} --repo-type dataset`) where the Hub is reachable"
        ) from err
    return Path(folder)

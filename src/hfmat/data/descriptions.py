"""Text for every crystal: templated descriptions as ``datasets`` columns (batched, ``num_proc``,
cached), in the styles Chemeleon (Park, Onwuli and Walsh, 2024) trains its text-crystal alignment on.

:func:`add_descriptions` adds, for each row's ``cif``:

- ``crystal_system`` (``"cubic"``), ``spacegroup_symbol`` (``"Pm-3m"``), ``spacegroup_number``
  (221): pymatgen's ``SpacegroupAnalyzer`` at ``symprec`` (0.1, as in the canonical CIF);
- ``structure_type``: ``"perovskite"``, ``"rocksalt"``, ... when the crystal matches one of the
  textbook prototypes of :mod:`hfmat.examples` with any assignment of its elements (pymatgen's
  ``StructureMatcher.fit_anonymous``), else ``""``;
- ``text_composition``: the reduced formula alone (``"SrTiO3"``);
- ``text_system``: composition and crystal system (``"SrTiO3, a cubic crystal"``);
- ``text_sentence``: a sentence with the space group symbol and number, the structure type where
  known, and the dataset's properties in words (:data:`PROPERTY_PHRASES`): ``"SrTiO3 crystallizes in
  the cubic Pm-3m space group (No. 221) with the perovskite structure. It has a direct band gap of
  2.1 eV and a formation heat of -0.50 eV/atom."``

:func:`add_robocrys_descriptions` adds ``text_robocrys``, robocrystallographer's description
(PyPI ``robocrys``): far slower (seconds per crystal), so meant for a selection of rows
(``benchmarks/bench_crystal_clip.py`` measures both paths' rows/s).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from datasets import Dataset, DatasetDict, Value

from hfmat.data.errors import warn_skipped
from hfmat.data.loaders import parse_cif
from hfmat.data.mapping import ERROR_COLUMN, map_skipping_bad_rows

#: The text styles, by column name, in the order of :data:`TEXT_COLUMNS`.
STYLES = ("composition", "system", "sentence")
TEXT_COLUMNS = tuple(f"text_{style}" for style in STYLES)

#: Property columns said in words: column -> (phrase, unit, decimals). A row's sentence names every
#: one of these columns its dataset has (a missing or non-finite value is left out).
PROPERTY_PHRASES: dict[str, tuple[str, str, int]] = {
    "dir_gap": ("a direct band gap of", "eV", 1),
    "ind_gap": ("an indirect band gap of", "eV", 1),
    "band_gap": ("a band gap of", "eV", 1),
    "heat_ref": ("a formation heat of", "eV/atom", 2),
    "formation_energy_per_atom": ("a formation energy of", "eV/atom", 2),
    "energy_per_atom": ("an energy of", "eV/atom", 2),
    "e_above_hull": ("an energy above the hull of", "eV/atom", 2),
}

#: Example structures (:func:`hfmat.examples.example_structures`) used as structure-type prototypes.
PROTOTYPES = {
    "SrTiO3_perovskite": "perovskite",
    "NaCl_rocksalt": "rocksalt",
    "ZnO_wurtzite": "wurtzite",
    "MgAl2O4_spinel": "spinel",
    "TiO2_rutile": "rutile",
    "Si_diamond": "diamond",
}

_FEATURES = {
    "crystal_system": Value("string"),
    "spacegroup_symbol": Value("string"),
    "spacegroup_number": Value("int64"),
    "structure_type": Value("string"),
    **{column: Value("string") for column in TEXT_COLUMNS},
}


def add_descriptions(
    data: Dataset | DatasetDict,
    *,
    properties: list[str] | None = None,
    symprec: float = 0.1,
    num_proc: int | None = None,
    return_stats: bool = False,
):
    """Add the description columns (module docstring) to every row of ``data``.

    ``properties``: the property columns the sentence names (default: every column of
    :data:`PROPERTY_PHRASES` the data has); one that the data lacks, or has no phrase for, is an
    error. Rows whose CIF does not parse or whose symmetry analysis fails are dropped and listed in
    a DataWarning (and in the statistics with ``return_stats=True``). Cached: a second call on the
    same data reads datasets' cache."""
    if isinstance(data, DatasetDict):
        out, stats = DatasetDict(), {}
        for split, dataset in data.items():
            out[split], stats[split] = add_descriptions(
                dataset, properties=properties, symprec=symprec, num_proc=num_proc, return_stats=True
            )
        return (out, stats) if return_stats else out
    if "cif" not in data.column_names:
        raise ValueError(f"add_descriptions: expected a 'cif' column; found {data.column_names}")
    if properties is None:
        properties = [p for p in PROPERTY_PHRASES if p in data.column_names]
    unknown = [p for p in properties if p not in PROPERTY_PHRASES]
    missing = [p for p in properties if p not in data.column_names]
    if unknown or missing:
        raise ValueError(
            f"add_descriptions: properties {unknown} have no phrase (known: {sorted(PROPERTY_PHRASES)})"
            if unknown
            else f"add_descriptions: properties {missing} are not columns of the data ({data.column_names})"
        )
    params = {"symprec": symprec, "properties": list(properties)}
    replaced = [c for c in _FEATURES if c in data.column_names]
    result, stats = map_skipping_bad_rows(
        data,
        describe_batch,
        step="descriptions",
        params=params,
        packages=("hfmat.data",),
        fn_kwargs=params,
        num_proc=num_proc,
        remove_columns=replaced,
        new_features=_FEATURES,
    )
    warn_skipped("add_descriptions", str(data.split or "data"), stats)
    return (result, stats) if return_stats else result


def describe_batch(batch: dict[str, list], *, symprec: float, properties: list[str]) -> dict[str, list]:
    """The batched map function of :func:`add_descriptions`."""
    out: dict[str, list] = {name: [] for name in (*_FEATURES, ERROR_COLUMN)}
    for i, text in enumerate(batch["cif"]):
        structure, error = parse_cif(text)
        row = None
        if structure is not None:
            try:
                values = {p: batch[p][i] for p in properties}
                row = describe_structure(structure, values, symprec=symprec)
            except Exception as err:  # spglib / matcher failures on degenerate cells
                error = f"description failed: {type(err).__name__}: {err}"
        for name in _FEATURES:
            out[name].append(row[name] if row else (0 if name == "spacegroup_number" else ""))
        out[ERROR_COLUMN].append("" if row else error)
    return out


def describe_structure(structure, properties: dict[str, Any] | None = None, *, symprec: float = 0.1) -> dict:
    """The description columns of one pymatgen Structure (``properties``: column -> value)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
    system = analyzer.get_crystal_system()
    symbol, number = analyzer.get_space_group_symbol(), analyzer.get_space_group_number()
    kind = structure_type(structure)
    formula = structure.composition.reduced_formula
    sentence = f"{formula} crystallizes in the {system} {symbol} space group (No. {number})"
    if kind:
        sentence += f" with the {kind} structure"
    said = [property_phrase(name, value) for name, value in (properties or {}).items()]
    said = [s for s in said if s]
    if said:
        sentence += ". It has " + join_words(said)
    return {
        "crystal_system": system,
        "spacegroup_symbol": symbol,
        "spacegroup_number": int(number),
        "structure_type": kind,
        "text_composition": formula,
        "text_system": f"{formula}, {'an' if system[0] in 'aeiou' else 'a'} {system} crystal",
        "text_sentence": sentence + ".",
    }


def property_phrase(name: str, value) -> str:
    """``"a direct band gap of 2.1 eV"`` for ``("dir_gap", 2.07)``; ``""`` for a missing value."""
    import math

    phrase, unit, decimals = PROPERTY_PHRASES[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    shown = f"{number:.{decimals}f}"
    if float(shown) == 0:
        shown = f"{0:.{decimals}f}"  # no "-0.0"
    return f"{phrase} {shown} {unit}"


def join_words(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@cache
def _prototypes():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from hfmat.examples import example_structures

    examples = example_structures()
    protos = [(name, examples[key].get_primitive_structure()) for key, name in PROTOTYPES.items()]
    return StructureMatcher(), protos


def structure_type(structure) -> str:
    """The name of the :data:`PROTOTYPES` entry the structure matches with some assignment of its
    elements (same anonymous formula first, then ``StructureMatcher.fit_anonymous``), or ``""``."""
    matcher, protos = _prototypes()
    formula = structure.composition.anonymized_formula
    for name, proto in protos:
        if proto.composition.anonymized_formula == formula and matcher.fit_anonymous(structure, proto):
            return name
    return ""


# --------------------------------------------------------------------------------------------------
# robocrystallographer


def add_robocrys_descriptions(data: Dataset, *, num_proc: int | None = None, return_stats: bool = False):
    """Add ``text_robocrys``: robocrystallographer's description of each row (PyPI ``robocrys``,
    imported on use). Rows it fails on are dropped and listed. Seconds per crystal: select rows first."""
    try:
        import robocrys  # noqa: F401
    except ImportError as err:
        raise ImportError(
            'add_robocrys_descriptions needs robocrys: install the text extra with `pip install "hfmat[text]"`'
        ) from err
    result, stats = map_skipping_bad_rows(
        data,
        robocrys_batch,
        step="robocrys",
        params={},
        num_proc=num_proc,
        batch_size=8,
        remove_columns=[c for c in ("text_robocrys",) if c in data.column_names],
        new_features={"text_robocrys": Value("string")},
    )
    warn_skipped("add_robocrys_descriptions", str(data.split or "data"), stats)
    return (result, stats) if return_stats else result


@cache
def _robocrys():
    from robocrys import StructureCondenser, StructureDescriber

    return StructureCondenser(), StructureDescriber()


def robocrys_batch(batch: dict[str, list]) -> dict[str, list]:
    import warnings

    condenser, describer = _robocrys()
    out: dict[str, list] = {"text_robocrys": [], ERROR_COLUMN: []}
    for text in batch["cif"]:
        structure, error = parse_cif(text)
        description = ""
        if structure is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    description = describer.describe(condenser.condense_structure(structure))
            except Exception as err:  # robocrys raises many kinds on odd cells
                error = f"robocrys failed: {type(err).__name__}: {err}"
        out["text_robocrys"].append(description)
        out[ERROR_COLUMN].append("" if description else (error or "robocrys gave no text"))
    return out

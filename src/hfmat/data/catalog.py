"""The standard crystal-generation benchmarks (CDVAE splits) and what is known about them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str
    pretty_name: str
    description: str
    source: str
    license: str  # a Hub license id, or "unknown"
    license_note: str
    target_property: str  # the property CDVAE conditions on ("prop" in its data config)
    standard_splits: dict[str, int]  # the usual row counts (CDVAE / DiffCSP)
    max_atoms: int
    min_atoms: int = 1
    #: the elements that occur in the benchmark's files (empty: not recorded)
    elements: tuple[str, ...] = ()


#: The 56 elements of perov_5 (the same in its val.csv and test.csv; tests/test_cli_scope.py checks).
PEROV_5_ELEMENTS = tuple(
    "Li Be B N O F Na Mg Al Si S K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Rb Sr Y Zr Nb Mo Ru Rh Pd "
    "Ag Cd In Sn Sb Te Cs Ba La Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi".split()
)


BENCHMARKS: dict[str, Benchmark] = {
    "perov_5": Benchmark(
        name="perov_5",
        pretty_name="Perov-5",
        description="Perovskite-like ABX3 crystals, all with 5 atoms in the cell (Castelli et al.).",
        source="github.com/txie-93/cdvae data/perov_5 (commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea)",
        license="mit",
        license_note="the cdvae repository is MIT-licensed; its data README gives no separate data licence",
        target_property="heat_ref",
        standard_splits={"train": 11356, "val": 3787, "test": 3785},
        max_atoms=5,
        min_atoms=5,
        elements=PEROV_5_ELEMENTS,
    ),
    "carbon_24": Benchmark(
        name="carbon_24",
        pretty_name="Carbon-24",
        description="Carbon allotropes with 6-24 atoms in the cell (Pickard, AIRSS).",
        source="github.com/txie-93/cdvae data/carbon_24 (commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea)",
        license="mit",
        license_note="the cdvae repository is MIT-licensed; its data README gives no separate data licence",
        target_property="energy_per_atom",
        standard_splits={"train": 6091, "val": 2032, "test": 2030},
        max_atoms=24,
        min_atoms=6,
        elements=("C",),
    ),
    "mp_20": Benchmark(
        name="mp_20",
        pretty_name="MP-20",
        description="Materials Project crystals with at most 20 atoms in the cell.",
        source="github.com/txie-93/cdvae data/mp_20 (commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea)",
        license="cc-by-4.0",
        license_note="MatterGen's data-release README states MP-20 is published under CC BY 4.0",
        target_property="formation_energy_per_atom",
        standard_splits={"train": 27136, "val": 9047, "test": 9046},
        max_atoms=20,
    ),
    "mpts_52": Benchmark(
        name="mpts_52",
        pretty_name="MPTS-52",
        description="Materials Project crystals with at most 52 atoms, split by time (mp-time-split).",
        source="github.com/jiaor17/DiffCSP data/mpts_52, from sparks-baird/mp-time-split",
        license="unknown",
        license_note="no licence statement for the data was found",
        target_property="formation_energy_per_atom",
        standard_splits={},
        max_atoms=52,
    ),
}

#: CSV file names of the CDVAE layout, by split name (the split names of the returned DatasetDict).
SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}

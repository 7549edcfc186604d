"""``hfmat demo``: the main job on the embedded defaults (what ``make demo`` runs)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="run hfmat's main job on the shipped defaults")
    p.set_defaults(func=run)


def run(args) -> int:
    from hfmat.examples import example_structures

    for name, structure in example_structures().items():
        sg = structure.get_space_group_info(symprec=0.1)
        print(f"{name:20s} {structure.composition.reduced_formula:10s} {len(structure):3d} atoms  {sg[0]} ({sg[1]})")
    return 0

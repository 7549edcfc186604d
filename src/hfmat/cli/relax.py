"""hfmat relax: relax crystals with a universal ML potential (CHGNet or SevenNet-0).

Reads structure files (CIF, POSCAR as .vasp, extended XYZ: what hfmat generate / diffuse --format
write; or every such file in the folders given), relaxes them in batches, writes each relaxed
structure to OUT as a standard P1 CIF (or POSCAR / extended XYZ) named after its input, and
OUT/relax.csv with, per input: energy per atom before and after (eV/atom), the final largest force
(eV/Å), optimiser steps, whether it converged, the RMS distance input -> relaxed and any error.
An input that cannot be read or relaxed gets a row with its error; the others go on.
Needs the optional extra: pip install "hfmat[physics]". See docs/physics.md."""

from hfmat.cli.options import FORMAT_CHOICES, add_parser
from hfmat.cli.relax_option import RELAX_CSV, STABILITY_COLUMNS, stability_report, write_table

EXAMPLES = """
hfmat relax runs/denovo --out runs/denovo_relaxed
hfmat relax a.cif b.cif --out relaxed --potential sevennet --fmax 0.05
hfmat relax runs/denovo --out runs/denovo_stability --hull perov_5:val --hull-limit 500 --train perov_5:val
"""
HULL_NOTE = (
    "With --hull, OUT/relax.csv gains e_above_hull (eV/atom), stable (<= 0), metastable (<= 0.1), unique "
    "and novel (with --train) columns and OUT/stability.json the rates (S.U.N.); the hull is the "
    "potential's own over the reference set plus relaxed elemental prototypes, not the Materials "
    "Project's DFT hull, and is cached (~/.cache/hfmat/physics or $HFMAT_CACHE/physics)."
)


def register(sub) -> None:
    p = add_parser(
        sub,
        "relax",
        help="relax CIFs with an ML potential (CHGNet / SevenNet-0); needs hfmat[physics]",
        description=__doc__,
        examples=EXAMPLES,
    )
    p.add_argument("inputs", nargs="+", help="structure files (.cif, .vasp, .extxyz) or folders of them")
    p.add_argument("--out", required=True, help="folder for the relaxed structures and relax.csv")
    p.add_argument("--potential", default="chgnet", choices=["chgnet", "sevennet"], help="default chgnet")
    p.add_argument("--fmax", type=float, default=0.1, help="force convergence, eV/Å (default 0.1)")
    p.add_argument("--steps", type=int, default=500, help="most optimiser steps per structure (500)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="cells per call of the potential (8: fastest measured on CPU)",
    )
    p.add_argument("--optimizer", default="FIRE", help="FIRE (default), BFGS, LBFGS or MDMin")
    p.add_argument("--fixed-cell", action="store_true", help="relax positions only, keep the cell")
    p.add_argument("--format", default="cif", choices=FORMAT_CHOICES, help="output format")
    p.add_argument(
        "--hull",
        action="append",
        default=None,
        help="DATASET:SPLIT or path: reference set for E_hull (repeat to join several). " + HULL_NOTE,
    )
    p.add_argument("--hull-limit", type=int, default=None, help="use only the first N rows of each --hull")
    p.add_argument(
        "--hull-single-point", action="store_true", help="take the references' energies as given, unrelaxed"
    )
    p.add_argument("--train", default=None, help="DATASET:SPLIT or path: training set, for novelty (S.U.N.)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the benchmark's CSVs (default: ../shared/data/DATASET from the current directory)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _input_files(inputs: list[str]):
    from pathlib import Path

    from hfmat.cif.export import READ_SUFFIXES

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in READ_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{path}: folder has no structure files ({', '.join(READ_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def _stems(files) -> list[str]:
    """Output names: the input's stem, with a number added when two inputs share one."""
    seen: dict[str, int] = {}
    stems = []
    for f in files:
        n = seen.get(f.stem, 0)
        seen[f.stem] = n + 1
        stems.append(f.stem if n == 0 else f"{f.stem}_{n}")
    return stems


def run(args) -> int:
    import sys
    from pathlib import Path

    from hfmat.extras import MissingExtraError

    files = _input_files(args.inputs)
    try:
        from hfmat.cif.export import read_structure, write_structure
        from hfmat.physics.potentials import load_potential
        from hfmat.physics.relaxation import CSV_COLUMNS, relax

        potential = load_potential(args.potential)
    except MissingExtraError as err:
        print(f"hfmat relax: error: {err}", file=sys.stderr)
        return 2
    structures, read_errors = [], {}
    for i, f in enumerate(files):
        try:
            structures.append(read_structure(f))
        except Exception as err:  # noqa: BLE001 - reported in the CSV, the others go on
            structures.append(None)
            read_errors[i] = f"cannot read {f.name}: {err}"
    readable = [s for s in structures if s is not None]
    results = relax(
        readable,
        potential,
        fmax=args.fmax,
        steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        relax_cell=not args.fixed_cell,
        progress=not args.no_progress,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = _stability(args, readable, results, potential, out) if args.hull else [{} for _ in results]
    results, extra = iter(results), iter(extra)
    rows, ok, converged = [], 0, 0
    for i, (f, stem) in enumerate(zip(files, _stems(files))):
        row = {"file": str(f), "output": ""}
        if i in read_errors:
            row.update({c: "" for c in CSV_COLUMNS}, error=read_errors[i])
        else:
            result = next(results)
            row.update(result.row(), **next(extra))
            if result.ok:
                row["output"] = write_structure(result.structure, out / stem, args.format).name
                ok += 1
                converged += result.converged
        rows.append(row)
    table = write_table(out / RELAX_CSV, rows, STABILITY_COLUMNS if args.hull else ())
    print(
        f"relaxed {ok}/{len(files)} with {potential.description} ({converged} converged to fmax "
        f"{args.fmax} eV/Å within {args.steps} steps, {len(files) - ok} failed); wrote {out}/ and {table}"
    )
    return 0 if ok else 1


def _stability(args, structures, results, potential, out) -> list[dict]:
    return stability_report(
        structures,
        results,
        potential,
        out,
        hull_sources=args.hull,
        hull_limit=args.hull_limit,
        train_source=args.train,
        data_dir=args.data_dir,
        relax_references=not args.hull_single_point,
        fmax=args.fmax,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )

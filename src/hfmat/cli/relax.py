"""hfmat relax: relax crystals with a universal ML potential (CHGNet or SevenNet-0).

Reads CIF files (or every .cif in the folders given), relaxes them in batches, writes each relaxed
structure to OUT as a standard P1 CIF (or POSCAR / extended XYZ) named after its input, and
OUT/relax.csv with, per input: energy per atom before and after (eV/atom), the final largest force
(eV/Å), optimiser steps, whether it converged, the RMS distance input -> relaxed and any error.
An input that cannot be read or relaxed gets a row with its error; the others go on.
Needs the optional extra: pip install "hfmat[physics]". See docs/physics.md."""

from hfmat.cli.options import FORMAT_CHOICES, add_parser

EXAMPLES = """
hfmat relax runs/denovo/cifs --out runs/denovo_relaxed
hfmat relax a.cif b.cif --out relaxed --potential sevennet --fmax 0.05
hfmat relax runs/denovo/cifs --out runs/denovo_stability --hull perov_5:val --hull-limit 500 --train perov_5:val
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
    p.add_argument("inputs", nargs="+", help="CIF files or folders of .cif files")
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

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.cif"))
            if not found:
                raise FileNotFoundError(f"{path}: folder has no .cif files")
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
        from hfmat.cif import cif_to_structure
        from hfmat.cif.export import write_structure
        from hfmat.physics.potentials import load_potential
        from hfmat.physics.relaxation import CSV_COLUMNS, relax

        potential = load_potential(args.potential)
    except MissingExtraError as err:
        print(f"hfmat relax: error: {err}", file=sys.stderr)
        return 2
    structures, read_errors = [], {}
    for i, f in enumerate(files):
        try:
            structures.append(cif_to_structure(f.read_text()))
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


STABILITY_COLUMNS = ("e_above_hull", "stable", "metastable", "unique", "novel")


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


def stability_report(
    structures,
    results,
    potential,
    out,
    hull_sources: list[str],
    hull_limit: int | None = None,
    train_source: str | None = None,
    data_dir: str | None = None,
    relax_references: bool = True,
    fmax: float = 0.1,
    batch_size: int = 8,
    progress: bool = True,
) -> list[dict]:
    """E_hull and S.U.N. flags per relaxed structure (CSV columns) against the potential's hull over
    ``hull_sources`` (each ``SOURCE[:SPLIT]``, first ``hull_limit`` rows), novelty against
    ``train_source``; writes OUT/stability.json and OUT/energies.png (``hfmat relax --hull`` and
    ``hfmat evaluate --task generation --relax``)."""
    import json

    from hfmat.cli.reference import data_dir_for
    from hfmat.physics.hull import load_structures, reference_hull
    from hfmat.physics.stability import plot_energies, stability

    refs = [
        s
        for source in hull_sources
        for s in load_structures(source, data_dir_for(source, data_dir, "--hull"), hull_limit)
    ]
    elements = sorted({el.symbol for s in structures for el in s.composition.elements})
    hull = reference_hull(
        refs,
        potential,
        relax_structures=relax_references,
        fmax=fmax,
        batch_size=batch_size,
        extra_elements=elements,
        progress=progress,
    )
    train = None
    if train_source:
        train = load_structures(train_source, data_dir_for(train_source, data_dir, "--train"))
    summary, rows = stability(structures, hull, train=train, results=results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stability.json").write_text(json.dumps(summary, indent=1))
    plot_energies(rows, out / "energies.png")
    print(
        f"E_hull ({hull.note}): stable {summary['stable_rate']}, metastable {summary['metastable_rate']}, "
        f"S.U.N. {summary['sun_rate']}; wrote {out / 'stability.json'}"
    )
    return [{c: row[c] for c in STABILITY_COLUMNS} for row in rows]


RELAX_CSV = "relax.csv"
RELAXED_SUFFIX = ".relaxed"


SAMPLES_RELAXED = (
    "each written structure, into NAME.relaxed.cif (or the --format's suffix) beside it, with "
    "relax.csv; summary.json records it"
)


def add_relax_option(p, what: str = SAMPLES_RELAXED) -> None:
    """``--relax {chgnet,sevennet}`` (off by default): ``what`` says what the command then does."""
    p.add_argument(
        "--relax",
        default=None,
        choices=["chgnet", "sevennet"],
        help=f"relax with this ML potential (fmax 0.1 eV/Å, at most 500 FIRE steps): {what}. "
        'Needs pip install "hfmat[physics]"; see docs/physics.md',
    )


def relax_potential(name: str | None):
    """The potential of ``--relax NAME`` (None when not given), loaded before any long work, so a
    missing extra fails at once: ValueError naming --relax and the install command."""
    if name is None:
        return None
    from hfmat.extras import MissingExtraError

    try:
        from hfmat.physics.potentials import load_potential

        return load_potential(name)
    except MissingExtraError as err:
        raise ValueError(f"--relax {name}: {err}") from None


def write_table(path, rows: list[dict], extra_columns=()):
    """relax.csv: one row per input (``RelaxResult.row()`` columns, ``extra_columns``, output)."""
    import csv

    from hfmat.physics.relaxation import CSV_COLUMNS

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["file", *CSV_COLUMNS, *extra_columns, "output"], restval=""
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def relax_written(writer, potential, fmax: float = 0.1, steps: int = 500, batch_size: int = 8) -> dict:
    """Relax every structure a generate / diffuse run wrote (``RunWriter.structures``): NAME.relaxed
    + its suffix beside NAME, OUT/relax.csv, and ``relax`` in the run's summary.json (potential,
    settings, counts, files). A structure the potential cannot handle gets its error row."""
    from hfmat.cif.export import FORMATS, write_structure
    from hfmat.physics.relaxation import relax

    names = [name for name, _ in writer.structures]
    results = relax(
        [s for _, s in writer.structures], potential, fmax=fmax, steps=steps, batch_size=batch_size
    )
    rows, files = [], []
    for name, result in zip(names, results):
        row = {"file": name, **result.row(), "output": ""}
        if result.ok:
            stem = name[: -len(FORMATS[writer.fmt])] + RELAXED_SUFFIX
            row["output"] = write_structure(result.structure, writer.out / stem, writer.fmt).name
            files.append(row["output"])
        rows.append(row)
    write_table(writer.out / RELAX_CSV, rows)
    info = {
        "potential": potential.description,
        "fmax": fmax,
        "steps": steps,
        "table": RELAX_CSV,
        "n_structures": len(results),
        "n_relaxed": sum(r.ok for r in results),
        "n_converged": sum(r.converged for r in results),
        "files": files,
    }
    writer.meta["relax"] = info
    print(
        f"relaxed {info['n_relaxed']}/{len(results)} with {potential.description} ({info['n_converged']} "
        f"converged); NAME{RELAXED_SUFFIX}{FORMATS[writer.fmt]} and {RELAX_CSV} in {writer.out}"
    )
    return info


EVALUATE_RELAXED = (
    "csp: match rate and RMSE before and after relaxing the candidates and the targets "
    "(OUT/relaxation.json, hfmat.physics.csp); generation: relax the samples and count S.U.N. against "
    "the potential's hull over --reference (--hull-limit rows; novelty against --train): "
    "OUT/stability.json, relax.csv, energies.png"
)


def evaluate_relaxed(args, potential, data_dir) -> dict:
    """The ``--relax`` part of ``hfmat evaluate`` (:data:`EVALUATE_RELAXED`); returns its summary."""
    import json
    from pathlib import Path

    out = Path(args.out)
    progress = not args.no_progress
    if args.task == "csp":
        from hfmat.physics.csp import csp_inputs, csp_relaxation

        grouped, targets = csp_inputs(args.predictions, args.reference, data_dir, workers=args.workers)
        summary = csp_relaxation(grouped, targets, potential, k=args.k, progress=progress)
        (out / "relaxation.json").write_text(json.dumps(summary, indent=1))
        for key in ("before", "after", "after_vs_relaxed_targets"):
            print(f"relaxation, {key}: {summary[key]}")
        print(f"median energy gap to the relaxed target: {summary['energy_gap_median']} eV/atom")
        print(f"wrote {out / 'relaxation.json'}")
        return summary
    from hfmat.evaluation.io import check_readable, parse_cifs, read_predictions
    from hfmat.physics.relaxation import relax

    records = read_predictions(args.predictions)
    check_readable(records, args.predictions)
    parsed = parse_cifs([r.cif for r in records], workers=args.workers, progress=False)
    kept = [(r, s) for r, (s, _) in zip(records, parsed) if s is not None]
    structures = [s for _, s in kept]
    if not structures:
        raise ValueError(f"--predictions {args.predictions}: no structure could be read to relax")
    results = relax(structures, potential, progress=progress)
    extra = stability_report(
        structures,
        results,
        potential,
        out,
        hull_sources=[args.reference],
        hull_limit=args.hull_limit,
        train_source=args.train,
        data_dir=args.data_dir,
        progress=progress,
    )
    rows = [
        {"file": r.source, **result.row(), **flags} for (r, _), result, flags in zip(kept, results, extra)
    ]
    write_table(out / RELAX_CSV, rows, STABILITY_COLUMNS)
    print(f"relaxed the {len(structures)} of {len(records)} predictions that parse; wrote {out / RELAX_CSV}")
    return json.loads((out / "stability.json").read_text())

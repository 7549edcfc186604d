"""The ``--relax`` option of hfmat generate, diffuse and evaluate, and what ``hfmat relax`` shares
with it: relax the structures a run wrote (or its predictions) with an ML potential, write
relax.csv and, for generation, the S.U.N. figures against the potential's hull. Nothing in
hfmat.lm or hfmat.diffusion imports physics: only this CLI layer does."""

STABILITY_COLUMNS = ("e_above_hull", "stable", "metastable", "unique", "novel")


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

"""Train the independent property predictor of a dataset, measure it on the test split, and write
the predictor folder with its card (README.md).

    python training/train_property_predictor.py --dataset perov_5 --properties heat_ref dir_gap \
        --out src/hfmat/evaluation/predictors/property-predictor-perov5
    python training/train_property_predictor.py --dataset carbon_24 --properties energy_per_atom \
        --out src/hfmat/evaluation/predictors/property-predictor-carbon24
    python training/train_property_predictor.py --dataset perov_5 --properties dir_gap --two-part dir_gap \
        --update --out src/hfmat/evaluation/predictors/property-predictor-perov5

The predictor trains on ``--train-split`` only (default ``val``: the CDVAE train splits of perov-5
and carbon-24 are not available here, and the generative models were trained on the val split too)
and is measured on ``--test-split`` (default ``test``), which it never sees. The card gives each
property's test MAE next to the test standard deviation and to the MAE of the best constant (the
training median), with this command. ``benchmarks/bench_property_predictor.py`` compares it with a
gradient-boosted model on the same features and times the featurisation.

``--two-part`` fits :class:`hfmat.evaluation.zero_inflated.ZeroInflatedRegressor` (is it non-zero,
then how large) for a property that is 0 for most crystals. ``--update`` joins the properties trained
now to the predictor already in ``--out`` (trained on the same split), keeping its other properties,
their weights and their metrics; each property records the command that trained it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

UNITS = {
    "heat_ref": "eV/atom",
    "heat_all": "eV/atom",
    "dir_gap": "eV",
    "ind_gap": "eV",
    "energy_per_atom": "eV/atom",
    "formation_energy_per_atom": "eV/atom",
    "band_gap": "eV",
    "e_above_hull": "eV/atom",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="perov_5, carbon_24, ... (a folder under --data-dir)")
    p.add_argument("--properties", nargs="+", required=True, help="numeric columns of the dataset")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--train-split", default="val")
    p.add_argument("--test-split", default="test")
    p.add_argument("--out", required=True, help="the predictor folder to write")
    p.add_argument("--limit-train", type=int, default=None, help="first N training rows only")
    p.add_argument("--limit-test", type=int, default=None, help="first N test rows only")
    p.add_argument("--ensemble", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument(
        "--loss",
        nargs="+",
        default=["l1"],
        help="l1, mse or huber: one for every property, or PROPERTY=LOSS each (default l1)",
    )
    p.add_argument(
        "--two-part", nargs="+", default=[], metavar="PROPERTY",
        help="two-part gradient-boosted model for these properties (mostly exactly 0) instead of MLPs",
    )  # fmt: skip
    p.add_argument(
        "--update", action="store_true",
        help="keep the other properties of the predictor in --out; replace or add only --properties",
    )  # fmt: skip
    p.add_argument("--max-epochs", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument(
        "--measure-only",
        action="store_true",
        help="no training: load the predictor in --out, store it again and measure it on the test split",
    )
    return p.parse_args(argv)


def load_split(args, split: str, limit: int | None):
    """``(structures, {property: values})`` of one split."""
    from pymatgen.core import Structure

    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[split])[split]
    missing = [p for p in args.properties if p not in ds.column_names]
    if missing:
        raise SystemExit(f"{args.dataset}/{split} has no column {missing}; its columns: {ds.column_names}")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    structures = [Structure.from_str(text, fmt="cif") for text in ds["cif"]]
    return structures, {p: np.asarray(ds[p], dtype=float) for p in args.properties}


def parse_loss(values: list[str]):
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    out = {}
    for v in values:
        name, sep, loss = v.partition("=")
        if not sep:
            raise SystemExit(f"--loss {v!r}: give one loss, or PROPERTY=LOSS for each property")
        out[name] = loss
    return out


def metrics(pred: np.ndarray, true: np.ndarray, train: np.ndarray) -> dict:
    ok = np.isfinite(pred) & np.isfinite(true)
    err = pred[ok] - true[ok]
    t = true[ok]
    return {
        "test_mae": float(np.abs(err).mean()),
        "test_rmse": float(np.sqrt((err**2).mean())),
        "test_r2": float(1 - (err**2).sum() / ((t - t.mean()) ** 2).sum()),
        "test_std": float(t.std()),
        "test_mae_of_train_median": float(np.abs(t - np.median(train[np.isfinite(train)])).mean()),
        "test_mae_of_train_mean": float(np.abs(t - np.mean(train[np.isfinite(train)])).mean()),
        "n_test": int(ok.sum()),
        "n_test_without_prediction": int((~ok).sum()),
    }


TWO_PART_TEXT = (
    "a two-part gradient-boosted model (`hfmat.evaluation.zero_inflated`: a classifier with balanced class "
    "weights says whether the value is non-zero, a regressor with the absolute-error loss trained on the "
    "non-zero training crystals says how large; 0 where the classifier's probability is below {threshold}), "
    "stored with skops (`{file}`)"
)


def card(config: dict, command: str) -> str:
    dataset, props = config["dataset"], config["properties"]
    mlps = {n: s for n, s in props.items() if s.get("model", "mlp") == "mlp"}
    rows = []
    for name, spec in props.items():
        m = spec["metrics"]
        unit = spec.get("units") or ""
        model = f"MLPs, {spec['loss']} loss" if name in mlps else "two-part gradient-boosted"
        rows.append(
            f"| `{name}` | {unit} | {model} | {m['test_mae']:.4f} | {m['test_std']:.4f} | "
            f"{m['test_mae_of_train_median']:.4f} | {m['test_r2']:.3f} | {spec['n_train']} | {m['n_test']} |"
        )
    if mlps:
        first = next(iter(mlps.values()))
        model_text = (
            f"per property, the mean of {first['ensemble']} small MLPs (hidden {first['hidden']}, the loss in "
            "the table below on the standardised property, early stopping on 10 % of the training rows)"
        )
    else:
        model_text = "per property, the model named below"
    two_part = [
        f"`{n}` is predicted by " + TWO_PART_TEXT.format(threshold=s["threshold"], file=s["file"]) + "."
        for n, s in props.items()
        if n not in mlps
    ]
    commands = [command] + [
        s["command"] for s in props.values() if s.get("command") and s["command"] != command
    ]
    weak = [
        f"\n**Weak: `{n}`.** Its test MAE ({s['metrics']['test_mae']:.4f}) is above that of predicting the training "
        f"median for every crystal ({s['metrics']['test_mae_of_train_median']:.4f}; R² {s['metrics']['test_r2']:.3f}): "
        "most crystals share one value (perov-5 `dir_gap` is 0 for 96 % of them), which the median gets exactly, "
        f"while the model, trained with the {s.get('loss', 'absolute-error')} loss, tries to tell the few others apart. Read its "
        "predictions as a rough indicator only.\n"
        for n, s in props.items()
        if s["metrics"]["test_mae"] >= s["metrics"]["test_mae_of_train_median"]
    ]
    return f"""# {config["name"]}

An independent property predictor for {dataset} crystals, used by `benchmarks/bench_guidance.py` to
measure what property-guided diffusion samples (hfmat issue 14). It shares nothing with the diffusion
models: fixed structure + composition features (`hfmat.evaluation.crystal_features`: elemental-property
statistics, cell shape, property-weighted radial distributions, local environments, bond angles; no
fitted featuriser) feed, {model_text}. {" ".join(two_part)}

```python
from hfmat.evaluation.property_predictor import PropertyPredictor

predictor = PropertyPredictor.from_pretrained("{config["name"]}")
predictor.predict(structures, "{next(iter(props))}")  # numpy array, NaN where a crystal has no features
```

## Data

Trained on the `{config["train_split"]}` split of {dataset} only ({config["train_split_rows"]} crystals), and
measured on the `{config["test_split"]}` split, which it never saw. **Not the standard protocol:** the CDVAE
train split is not available here, so the `val` split serves as training data, as it does for the
hfmat diffusion models the predictor measures.

## Measured on the test split

| property | units | model | test MAE | test std | MAE of the training median | R² | train rows | test rows |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
{"".join(weak)}
Reproduce (from the repository root, one CPU thread, {config["train_seconds"]:.0f} s here{
        ", in this order" if len(commands) > 1 else ""
    }):

```bash
{chr(10).join(commands)}
```

Files: `config.json` (feature names and normalisation, each property's target statistics, model
and these metrics), `model.safetensors` (the MLP weights and the elemental table the features use){
        "".join(
            f", `{s['file']}` (the two-part model of `{n}`, skops format)"
            for n, s in props.items()
            if "file" in s
        )
    }.
"""


def main(argv=None) -> dict:
    args = parse_args(argv)
    stray = sorted(set(args.two_part) - set(args.properties))
    if stray:
        raise SystemExit(f"--two-part {' '.join(stray)}: not among --properties {' '.join(args.properties)}")
    import torch

    torch.set_num_threads(args.threads or torch.get_num_threads())
    from hfmat.evaluation import crystal_features
    from hfmat.evaluation.property_predictor import (
        CONFIG_NAME,
        PredictorError,
        PropertyPredictor,
        fit_property_predictor,
        merge_predictors,
    )

    command = "python training/train_property_predictor.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    start = time.perf_counter()
    train_s, train_y = load_split(args, args.train_split, args.limit_train)
    test_s, test_y = load_split(args, args.test_split, args.limit_test)
    load_s = time.perf_counter() - start

    table = crystal_features.element_table()
    start = time.perf_counter()
    x_test, _ = crystal_features.featurize(test_s, table)
    x_train = None if args.measure_only else crystal_features.featurize(train_s, table)[0]
    featurize_s = time.perf_counter() - start
    print(
        f"features: {len(test_s) + (0 if x_train is None else len(train_s))} crystals in {featurize_s:.1f} s"
    )

    start = time.perf_counter()
    if args.measure_only:
        predictor = PropertyPredictor.from_pretrained(args.out)
        missing = [p for p in args.properties if p not in predictor.properties]
        if missing:
            raise SystemExit(f"{args.out} does not predict {missing}: it predicts {predictor.properties}")
    else:
        predictor = fit_property_predictor(
            None,
            train_y,
            features=x_train,
            table=table,
            hidden=args.hidden,
            dropout=args.dropout,
            ensemble=args.ensemble,
            max_epochs=args.max_epochs,
            loss=parse_loss(args.loss),
            two_part=args.two_part,
            seed=args.seed,
        )
        for prop in args.properties:
            predictor.config["properties"][prop]["command"] = command
        if args.update:
            if not (Path(args.out) / CONFIG_NAME).is_file():
                raise SystemExit(f"--update: {args.out} holds no predictor to update")
            base = PropertyPredictor.from_pretrained(args.out)
            try:
                predictor = merge_predictors(base, predictor)
            except PredictorError as err:
                raise SystemExit(f"--update {args.out}: {err}") from None
            command = base.config["command"]
            predictor.config["train_seconds"] = base.config["train_seconds"] + time.perf_counter() - start
        predictor.config.update(
            name=Path(args.out).name,
            dataset=args.dataset,
            train_split=args.train_split,
            train_split_rows=len(train_s),
            test_split=args.test_split,
            command=command,
        )
        predictor.config.setdefault("train_seconds", time.perf_counter() - start)
        for prop in args.properties:
            spec = predictor.config["properties"][prop]
            spec["units"] = UNITS.get(prop)
    # measured as shipped: stored (float16 weights) and loaded back
    out = predictor.save_pretrained(args.out)
    shipped = PropertyPredictor.from_pretrained(out)
    for prop in args.properties:
        spec = shipped.config["properties"][prop]
        spec["metrics"] = metrics(shipped.predict_features(x_test, prop), test_y[prop], train_y[prop])
        m = spec["metrics"]
        print(
            f"{prop}: test MAE {m['test_mae']:.4f} (std {m['test_std']:.4f}, training-median MAE "
            f"{m['test_mae_of_train_median']:.4f}, R2 {m['test_r2']:.3f})",
            flush=True,
        )
    (out / CONFIG_NAME).write_text(json.dumps(shipped.config, indent=2) + "\n")
    (out / "README.md").write_text(card(shipped.config, shipped.config["command"]))
    print(f"wrote {out} (load {load_s:.0f} s, features {featurize_s:.0f} s)")
    return shipped.config


if __name__ == "__main__":
    main()

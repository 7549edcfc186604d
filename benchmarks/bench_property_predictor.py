"""The property predictor's featurisation speed, and how it compares with a gradient-boosted model.

    OMP_NUM_THREADS=1 python benchmarks/bench_property_predictor.py --dataset perov_5 --properties heat_ref dir_gap

Times :func:`hfmat.evaluation.crystal_features.featurize` on the first ``--time-n`` crystals of the
test split (one call, after a warm-up on 10), then fits scikit-learn's HistGradientBoostingRegressor
(absolute-error loss, early stopping, seeded) per property on the features of the ``--train-split``
and prints its test MAE next to that of the predictor (``--predictor``, default the dataset's
shipped one), which the card reports. The gradient-boosted model is not shipped: scikit-learn saves
models only as pickles.

``--zero-inflated dir_gap`` also fits, for a property that is exactly zero for most crystals
(perov-5 ``dir_gap``: 96 %), a two-part gradient-boosted model (:func:`zero_inflated_gbm`): a
classifier of "non-zero" (balanced class weights) and a regressor trained on the non-zero rows only;
it predicts 0 where the classifier's probability is below 0.5. It prints the classifier's ROC AUC,
precision and recall on the test split's non-zero crystals, and the MAE over all test crystals and
over the non-zero ones, next to predicting 0 everywhere and to the predictor.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--properties", nargs="+", required=True)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--train-split", default="val")
    p.add_argument("--test-split", default="test")
    p.add_argument("--predictor", default=None, help="default: the dataset's shipped predictor")
    p.add_argument("--time-n", type=int, default=1000, help="crystals in the timed featurisation")
    p.add_argument("--no-gbm", action="store_true", help="only time the featurisation")
    p.add_argument(
        "--zero-inflated",
        nargs="+",
        default=[],
        metavar="PROPERTY",
        help="also fit the two-part (zero / non-zero) gradient-boosted model for these properties",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def zero_inflated_gbm(x_train, y_train, x_test, y_test, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Fit :class:`hfmat.evaluation.zero_inflated.ZeroInflatedRegressor` (the shipped perov-5
    dir_gap model): "is it non-zero" (a balanced gradient-boosted classifier) and "how large" (an
    absolute-error gradient-boosted regressor on the non-zero training rows); 0 where the classifier
    says zero (probability < 0.5), else the regressor's value (clipped at 0 when every training value
    is non-negative). Returns the test predictions and their figures."""
    from sklearn.metrics import roc_auc_score

    from hfmat.evaluation.zero_inflated import ZeroInflatedError, ZeroInflatedRegressor

    try:
        model = ZeroInflatedRegressor.fit(x_train, y_train, seed=seed)
    except ZeroInflatedError as err:
        raise SystemExit(f"--zero-inflated: {err}") from None
    prob, size = model.probability(x_test), model.size(x_test)
    true_nz, said_nz = y_test != 0, prob >= model.threshold
    pred = model.predict(x_test)

    def mae(a, b):
        return float(np.abs(a - b).mean()) if len(b) else float("nan")

    figures = {
        "test_nonzero": int(true_nz.sum()),
        "auc": float(roc_auc_score(true_nz, prob)) if 0 < true_nz.sum() < len(y_test) else float("nan"),
        "precision": float((said_nz & true_nz).sum() / max(int(said_nz.sum()), 1)),
        "recall": float((said_nz & true_nz).sum() / max(int(true_nz.sum()), 1)),
        "test_mae": mae(pred, y_test),
        "test_mae_of_zero": mae(0.0, y_test),
        "nonzero_test_mae": mae(pred[true_nz], y_test[true_nz]),
        "nonzero_regressor_mae": mae(size[true_nz], y_test[true_nz]),
        "nonzero_mae_of_median": mae(np.median(y_train[y_train != 0]), y_test[true_nz]),
    }
    return pred, figures


def split(args, name):
    from pymatgen.core import Structure

    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[name])[name]
    return [Structure.from_str(t, fmt="cif") for t in ds["cif"]], {
        p: np.asarray(ds[p], dtype=float) for p in args.properties
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    unknown = sorted(set(args.zero_inflated) - set(args.properties))
    if unknown:
        raise SystemExit(
            f"--zero-inflated {' '.join(unknown)}: not among --properties {' '.join(args.properties)}"
        )
    if args.zero_inflated and args.no_gbm:
        raise SystemExit("--zero-inflated fits gradient-boosted models: drop --no-gbm")
    from hfmat.evaluation import crystal_features
    from hfmat.evaluation.property_predictor import SHIPPED, PropertyPredictor

    predictor = PropertyPredictor.from_pretrained(args.predictor or SHIPPED[args.dataset])
    test_s, test_y = split(args, args.test_split)
    crystal_features.featurize(test_s[:10], predictor.table)
    timed = test_s[: args.time_n]
    start = time.perf_counter()
    crystal_features.featurize(timed, predictor.table)
    seconds = time.perf_counter() - start
    out = {"featurize_n": len(timed), "featurize_s": seconds}
    print(f"featurize: {len(timed)} {args.dataset} {args.test_split} crystals in {seconds:.2f} s", flush=True)
    if args.no_gbm:
        return out
    from sklearn.ensemble import HistGradientBoostingRegressor

    train_s, train_y = split(args, args.train_split)
    x_train, _ = crystal_features.featurize(train_s, predictor.table)
    x_test, _ = crystal_features.featurize(test_s, predictor.table)
    for prop in args.properties:
        ok = np.isfinite(x_train).all(axis=1) & np.isfinite(train_y[prop])
        gbm = HistGradientBoostingRegressor(
            loss="absolute_error",
            max_iter=1000,
            learning_rate=0.05,
            early_stopping=True,
            random_state=args.seed,
        ).fit(x_train[ok], train_y[prop][ok])
        good = np.isfinite(x_test).all(axis=1) & np.isfinite(test_y[prop])
        gbm_mae = float(np.abs(gbm.predict(x_test[good]) - test_y[prop][good]).mean())
        mlp_mae = float(np.abs(predictor.predict_features(x_test[good], prop) - test_y[prop][good]).mean())
        out[prop] = {"gbm_test_mae": gbm_mae, "predictor_test_mae": mlp_mae}
        print(f"{prop}: test MAE gradient-boosted {gbm_mae:.4f}, predictor {mlp_mae:.4f}", flush=True)
        if prop in args.zero_inflated:
            _, zi = zero_inflated_gbm(
                x_train[ok], train_y[prop][ok], x_test[good], test_y[prop][good], seed=args.seed
            )
            out[prop]["zero_inflated"] = zi
            print(
                f"{prop}, two-part gradient-boosted: non-zero classifier AUC {zi['auc']:.3f}, precision "
                f"{zi['precision']:.3f}, recall {zi['recall']:.3f} ({zi['test_nonzero']} non-zero test "
                f"crystals); test MAE {zi['test_mae']:.4f} (predicting 0: {zi['test_mae_of_zero']:.4f}); "
                f"on the non-zero crystals {zi['nonzero_test_mae']:.4f} (regressor alone "
                f"{zi['nonzero_regressor_mae']:.4f}, their training median {zi['nonzero_mae_of_median']:.4f})",
                flush=True,
            )
    return out


if __name__ == "__main__":
    main()

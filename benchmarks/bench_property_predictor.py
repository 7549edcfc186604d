"""The property predictor's featurisation speed, and how it compares with a gradient-boosted model.

    OMP_NUM_THREADS=1 python benchmarks/bench_property_predictor.py --dataset perov_5 --properties heat_ref dir_gap

Times :func:`hfmat.evaluation.crystal_features.featurize` on the first ``--time-n`` crystals of the
test split (one call, after a warm-up on 10), then fits scikit-learn's HistGradientBoostingRegressor
(absolute-error loss, early stopping, seeded) per property on the features of the ``--train-split``
and prints its test MAE next to that of the predictor (``--predictor``, default the dataset's
shipped one), which the card reports. The gradient-boosted model is not shipped: scikit-learn saves
models only as pickles.
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
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def split(args, name):
    from pymatgen.core import Structure

    from hfmat.data import load_crystal_dataset

    ds = load_crystal_dataset(args.dataset, data_dir=Path(args.data_dir), splits=[name])[name]
    return [Structure.from_str(t, fmt="cif") for t in ds["cif"]], {
        p: np.asarray(ds[p], dtype=float) for p in args.properties
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
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
    return out


if __name__ == "__main__":
    main()

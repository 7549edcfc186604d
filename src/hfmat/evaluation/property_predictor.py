"""An independent property predictor, to measure what property-guided sampling produces.

A :class:`PropertyPredictor` maps crystals to one or more scalar properties (perov-5 ``heat_ref``,
``dir_gap``; carbon-24 ``energy_per_atom``): the structure + composition features of
:mod:`hfmat.evaluation.crystal_features` feed, per property, an ensemble of small torch MLPs whose
mean is the prediction, or, for a property that is 0 for most crystals, a two-part gradient-boosted
model (:mod:`hfmat.evaluation.zero_inflated`). It shares nothing with the diffusion models it measures.

A folder holds ``config.json`` (feature names, their normalisation, each property's target
statistics, model and measured metrics), ``model.safetensors`` (the MLP weights and the elemental
table the features were computed with) and one ``<property>.skops`` file per two-part property
(skops, not pickle: it loads only the types it is told to trust). No pickles.

    predictor = PropertyPredictor.from_pretrained("property-predictor-perov5")   # shipped name
    predictor.predict(structures, "heat_ref")          # np.ndarray [n], NaN where no features
    predictor.predict_all(structures)                  # {"heat_ref": ..., "dir_gap": ...}

:func:`fit_property_predictor` trains one; ``training/train_property_predictor.py`` trains, measures
and writes the shipped ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from torch import nn

from hfmat.evaluation import crystal_features
from hfmat.evaluation.zero_inflated import ZeroInflatedError, ZeroInflatedRegressor

FORMAT = "hfmat-property-predictor"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Shipped predictors: package data next to this module.
SHIPPED_ROOT = Path(__file__).resolve().parent / "predictors"
#: dataset (as hfmat.evaluation.reference.canonical_dataset names it) -> shipped predictor name
SHIPPED = {"perov_5": "property-predictor-perov5", "carbon_24": "property-predictor-carbon24"}
#: a property's ``model`` in the config: the MLP ensemble (the default) or the two-part model
MLP, TWO_PART = "mlp", "zero_inflated_gbm"


class PredictorError(ValueError):
    """A predictor folder or a request it cannot serve."""


class _MLP(nn.Module):
    def __init__(self, n_in: int, hidden: Sequence[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def shipped_predictor(name: str) -> Path:
    """The folder of a shipped predictor (:data:`SHIPPED`'s values)."""
    names = sorted(SHIPPED.values())
    if name not in names:
        raise PredictorError(
            f"no shipped property predictor {name!r}; the shipped ones are {', '.join(names)}"
        )
    path = SHIPPED_ROOT / name
    if not (path / CONFIG_NAME).is_file():
        raise PredictorError(
            f"the shipped property predictor {name} is missing from {SHIPPED_ROOT}: this installation "
            "of hfmat was built without its package data; reinstall hfmat"
        )
    return path


class PropertyPredictor:
    """Per-property MLP ensembles (or two-part gradient-boosted models) on
    :mod:`~hfmat.evaluation.crystal_features` features.

    ``two_part`` holds fitted :class:`ZeroInflatedRegressor` by property; ``folder`` is where the
    two-part properties' files are read from (on first use) when they are not given."""

    def __init__(
        self,
        config: dict[str, Any],
        weights: Mapping[str, torch.Tensor],
        folder: str | Path | None = None,
        two_part: Mapping[str, ZeroInflatedRegressor] | None = None,
    ):
        self.config = config
        self.folder = Path(folder) if folder is not None else None
        self.two_part: dict[str, ZeroInflatedRegressor] = dict(two_part or {})
        features = config["features"]
        if features["names"] != crystal_features.feature_names():
            raise PredictorError(
                "this predictor was trained on other features than hfmat.evaluation.crystal_features "
                f"computes now ({len(features['names'])} vs {len(crystal_features.feature_names())} "
                "columns, or other names): retrain it with training/train_property_predictor.py"
            )
        self.table = weights["element_table"].double().numpy()
        self.feature_mean = np.asarray(features["mean"], dtype=float)
        self.feature_std = np.asarray(features["std"], dtype=float)
        self.models: dict[str, list[_MLP]] = {}
        for name, spec in config["properties"].items():
            kind = spec.get("model", MLP)
            if kind == TWO_PART:
                if name not in self.two_part and (
                    self.folder is None or not (self.folder / spec["file"]).is_file()
                ):
                    where = self.folder / spec["file"] if self.folder is not None else spec["file"]
                    raise PredictorError(f"{name!r} is a two-part model, but its file {where} is missing")
                continue
            if kind != MLP:
                raise PredictorError(f"{name!r}: unknown model {kind!r} (one of {MLP}, {TWO_PART})")
            members = []
            for k in range(int(spec["ensemble"])):
                model = _MLP(len(features["names"]), spec["hidden"], spec.get("dropout", 0.0))
                prefix = f"{name}.{k}."
                state = {key[len(prefix) :]: v for key, v in weights.items() if key.startswith(prefix)}
                try:
                    model.load_state_dict(state)
                except RuntimeError as err:
                    raise PredictorError(
                        f"weights of {name!r} member {k} do not fit its config: {err}"
                    ) from None
                members.append(model.eval())
            self.models[name] = members

    # ------------------------------------------------------------------------------ properties
    @property
    def properties(self) -> list[str]:
        return list(self.config["properties"])

    def test_mae(self, prop: str) -> float | None:
        """The MAE measured on the test split when this predictor was trained (None if not)."""
        return self._spec(prop).get("metrics", {}).get("test_mae")

    def _spec(self, prop: str) -> dict[str, Any]:
        if prop not in self.config["properties"]:
            raise PredictorError(
                f"this predictor has no property {prop!r}; it predicts {', '.join(self.properties)}"
            )
        return self.config["properties"][prop]

    # -------------------------------------------------------------------------------- predict
    def features(self, structures: Sequence[Structure | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(features, ok)`` of :func:`crystal_features.featurize` with this predictor's table."""
        return crystal_features.featurize(list(structures), self.table)

    def model_kind(self, prop: str) -> str:
        """``mlp`` or ``zero_inflated_gbm``."""
        return self._spec(prop).get("model", MLP)

    def _two_part(self, prop: str) -> ZeroInflatedRegressor:
        if prop not in self.two_part:
            spec = self._spec(prop)
            try:
                self.two_part[prop] = ZeroInflatedRegressor.load(
                    self.folder / spec["file"], spec.get("threshold", 0.5), spec.get("clip_min")
                )
            except ZeroInflatedError as err:
                raise PredictorError(f"{prop!r}: {err}") from None
        return self.two_part[prop]

    @torch.no_grad()
    def predict_features(self, features: np.ndarray, prop: str) -> np.ndarray:
        spec = self._spec(prop)
        x = np.asarray(features, dtype=float)
        out = np.full(len(x), np.nan)
        ok = np.isfinite(x).all(axis=1)
        if ok.any() and self.model_kind(prop) == TWO_PART:
            out[ok] = self._two_part(prop).predict(x[ok])
        elif ok.any():
            z = torch.as_tensor((x[ok] - self.feature_mean) / self.feature_std, dtype=torch.float32)
            y = torch.stack([m(z) for m in self.models[prop]]).mean(0).double().numpy()
            out[ok] = y * spec["target_std"] + spec["target_mean"]
        return out

    def predict(self, structures: Sequence[Structure | None], prop: str | None = None) -> np.ndarray:
        """``[n]`` predictions of ``prop`` (may be left out when the predictor has one property);
        NaN for an entry that is not a crystal the features can describe."""
        if prop is None:
            if len(self.properties) != 1:
                raise PredictorError(f"name the property to predict: one of {', '.join(self.properties)}")
            prop = self.properties[0]
        self._spec(prop)
        return self.predict_features(self.features(structures)[0], prop)

    def predict_all(self, structures: Sequence[Structure | None]) -> dict[str, np.ndarray]:
        """Every property, from one featurisation."""
        x = self.features(structures)[0]
        return {p: self.predict_features(x, p) for p in self.properties}

    # ----------------------------------------------------------------------------- save / load
    def state_dict(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The MLP weights in ``dtype`` and the elemental table (float64)."""
        state = {"element_table": torch.as_tensor(self.table, dtype=torch.float64)}
        for name, members in self.models.items():
            for k, model in enumerate(members):
                for key, value in model.state_dict().items():
                    state[f"{name}.{k}.{key}"] = value.detach().to(dtype).contiguous()
        return state

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a ``<property>.skops`` file per two-part
        property. The MLP weights are stored in ``dtype`` (float16 by default: half the size; they
        compute in float32 once loaded, so measure a predictor after loading it back, as the
        training script does)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for prop in self.properties:
            if self.model_kind(prop) == TWO_PART:
                self._two_part(prop).save(folder / self._spec(prop)["file"])
        self.config["weights_dtype"] = str(dtype).removeprefix("torch.")
        save_file(self.state_dict(dtype), str(folder / WEIGHTS_NAME), metadata={"format": FORMAT})
        (folder / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> PropertyPredictor:
        """A predictor folder, or the name of a shipped one (``property-predictor-perov5``,
        ``property-predictor-carbon24``)."""
        from safetensors.torch import load_file

        path = Path(name_or_path)
        if not path.is_dir():
            if str(name_or_path) in SHIPPED.values():
                path = shipped_predictor(str(name_or_path))
            else:
                raise PredictorError(
                    f"{name_or_path} is neither a folder nor a shipped property predictor "
                    f"({', '.join(sorted(SHIPPED.values()))})"
                )
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise PredictorError(f"{path} has no {name}: not a property predictor folder")
        try:
            config = json.loads((path / CONFIG_NAME).read_text())
        except json.JSONDecodeError as err:
            raise PredictorError(f"{path / CONFIG_NAME} is not JSON: {err}") from None
        if config.get("format") != FORMAT:
            raise PredictorError(
                f"{path / CONFIG_NAME} is not a property predictor config (format != {FORMAT!r})"
            )
        return cls(config, load_file(str(path / WEIGHTS_NAME)), folder=path)


# ------------------------------------------------------------------------------------ training
LOSSES = {
    "l1": lambda e: e.abs().mean(),
    "mse": lambda e: (e**2).mean(),
    "huber": lambda e: nn.functional.huber_loss(e, torch.zeros_like(e), delta=1.0),
}


def _train_member(x, y, x_val, y_val, hidden, dropout, seed, max_epochs, patience, lr, batch_size, loss):
    torch.manual_seed(seed)
    loss_fn = LOSSES[loss]
    model = _MLP(x.shape[1], hidden, dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    best, best_state, waited = float("inf"), None, 0
    for _ in range(max_epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(batch_size):
            value = loss_fn(model(x[idx]) - y[idx])
            opt.zero_grad()
            value.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model(x_val) - y_val))
        if val < best - 1e-5:
            best, waited = val, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    return model.eval()


def fit_property_predictor(
    structures: Sequence[Structure] | None,
    targets: Mapping[str, Sequence[float]],
    *,
    features: np.ndarray | None = None,
    table: np.ndarray | None = None,
    hidden: Sequence[int] = (256, 256),
    dropout: float = 0.1,
    ensemble: int = 5,
    holdout_fraction: float = 0.1,
    max_epochs: int = 400,
    patience: int = 40,
    lr: float = 1e-3,
    batch_size: int = 128,
    loss: str | Mapping[str, str] = "l1",
    two_part: Sequence[str] = (),
    seed: int = 0,
    info: Mapping[str, Any] | None = None,
) -> PropertyPredictor:
    """Train a predictor of each property in ``targets`` (name -> value per crystal) on these
    crystals (or their precomputed ``features``, computed with ``table``). Each ensemble member
    trains with ``loss`` (``l1``, ``mse`` or ``huber`` on the standardised target; one for all or
    per property) and stops early on a seeded ``holdout_fraction`` of the rows (one per member), on
    the same loss; crystals without features or without a finite value are left out. The properties
    named in ``two_part`` get a :class:`ZeroInflatedRegressor` instead (for a property that is 0 for
    most crystals). ``info`` is stored in the config (dataset, split, ...)."""
    if table is None:
        table = crystal_features.element_table()
    if features is None:
        if structures is None:
            raise PredictorError("give the structures or their features")
        features, _ = crystal_features.featurize(list(structures), table)
    x_all = np.asarray(features, dtype=float)
    if not targets:
        raise PredictorError("no targets to train on")
    ok = np.isfinite(x_all).all(axis=1)
    if ok.sum() < 10:
        raise PredictorError(f"only {int(ok.sum())} crystals have features: too few to train on")
    mean, std = x_all[ok].mean(axis=0), x_all[ok].std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)  # a constant column stays 0 after scaling
    config: dict[str, Any] = {
        "format": FORMAT,
        "features": {
            "module": "hfmat.evaluation.crystal_features",
            "names": crystal_features.feature_names(),
            "mean": mean.tolist(),
            "std": std.tolist(),
        },
        "properties": {},
        **dict(info or {}),
    }
    weights: dict[str, torch.Tensor] = {"element_table": torch.as_tensor(table, dtype=torch.float64)}
    unknown = sorted(set(two_part) - set(targets))
    if unknown:
        raise PredictorError(f"two_part names {unknown}, which are not among the targets {list(targets)}")
    fitted: dict[str, ZeroInflatedRegressor] = {}
    for name, values in targets.items():
        y_all = np.asarray(values, dtype=float)
        if len(y_all) != len(x_all):
            raise PredictorError(f"{name}: {len(y_all)} values for {len(x_all)} crystals")
        rows = np.flatnonzero(ok & np.isfinite(y_all))
        if name in two_part:
            try:
                fitted[name] = ZeroInflatedRegressor.fit(x_all[rows], y_all[rows], seed=seed)
            except ZeroInflatedError as err:
                raise PredictorError(f"{name}: {err}") from None
            import sklearn

            config["properties"][name] = {
                "model": TWO_PART,
                "file": f"{name}.skops",
                "threshold": fitted[name].threshold,
                "clip_min": fitted[name].clip_min,
                "scikit_learn": sklearn.__version__,
                "n_train": int(len(rows)),
                "n_train_nonzero": int((y_all[rows] != 0).sum()),
                "metrics": {},
            }
            continue
        prop_loss = loss if isinstance(loss, str) else loss.get(name, "l1")
        if prop_loss not in LOSSES:
            raise PredictorError(f"{name}: unknown loss {prop_loss!r}; one of {', '.join(LOSSES)}")
        y_mean, y_std = float(y_all[rows].mean()), float(y_all[rows].std())
        y_std = y_std if y_std > 1e-12 else 1.0
        x = torch.as_tensor((x_all[rows] - mean) / std, dtype=torch.float32)
        y = torch.as_tensor((y_all[rows] - y_mean) / y_std, dtype=torch.float32)
        n_val = max(1, int(round(holdout_fraction * len(rows))))
        for k in range(ensemble):
            perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed + 1000 * k))
            val, train = perm[:n_val], perm[n_val:]
            model = _train_member(
                x[train], y[train], x[val], y[val], list(hidden), dropout, seed + k, max_epochs, patience, lr,
                batch_size, prop_loss,
            )  # fmt: skip
            for key, value in model.state_dict().items():
                weights[f"{name}.{k}.{key}"] = value.detach().clone().contiguous()
        config["properties"][name] = {
            "target_mean": y_mean,
            "target_std": y_std,
            "hidden": list(hidden),
            "dropout": dropout,
            "ensemble": ensemble,
            "loss": prop_loss,
            "n_train": int(len(rows)),
            "metrics": {},
        }
    return PropertyPredictor(config, weights, two_part=fitted)


def merge_predictors(base: PropertyPredictor, new: PropertyPredictor) -> PropertyPredictor:
    """``base`` with the properties of ``new`` added or replaced (the others kept as they are, weights
    and metrics included). Both must use the same features and elemental table, and, where ``new``
    has MLPs (which work on normalised features; two-part models use the raw ones), the same
    normalisation: train ``new`` on the same split."""
    fb, fn = base.config["features"], new.config["features"]
    if fb["names"] != fn["names"] or not np.array_equal(base.table, new.table):
        raise PredictorError(
            "the two predictors' features differ (names or elemental table): retrain the predictor "
            "with the features hfmat.evaluation.crystal_features computes now"
        )
    mlps = [p for p in new.properties if new.model_kind(p) == MLP]
    same_scale = np.allclose(fb["mean"], fn["mean"], rtol=1e-6, atol=1e-9) and np.allclose(
        fb["std"], fn["std"], rtol=1e-6, atol=1e-9
    )
    if mlps and not same_scale:
        raise PredictorError(
            f"the new MLP properties {mlps} were trained on features normalised differently from the "
            "predictor they would join: train them on the same split, or retrain the whole predictor"
        )
    kept = [p for p in base.properties if p not in new.properties]
    config = {**base.config, "properties": {**{p: base.config["properties"][p] for p in kept}}}
    config["properties"].update(new.config["properties"])
    weights = {k: v for k, v in base.state_dict().items() if k.split(".", 1)[0] in kept}
    weights.update(new.state_dict())
    two_part = {p: base._two_part(p) for p in kept if base.model_kind(p) == TWO_PART}
    two_part.update(new.two_part)
    return PropertyPredictor(config, weights, two_part=two_part)

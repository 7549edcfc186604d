"""An independent property predictor, to measure what property-guided sampling produces.

A :class:`PropertyPredictor` maps crystals to one or more scalar properties (perov-5 ``heat_ref``,
``dir_gap``; carbon-24 ``energy_per_atom``): the structure + composition features of
:mod:`hfmat.evaluation.crystal_features` feed, per property, an ensemble of small torch MLPs whose
mean is the prediction. It shares nothing with the diffusion models it measures.

A folder holds ``config.json`` (feature names, their normalisation, each property's target
statistics, architecture and measured metrics) and ``model.safetensors`` (the MLP weights and the
elemental table the features were computed with): no pickles.

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

FORMAT = "hfmat-property-predictor"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Shipped predictors: package data next to this module.
SHIPPED_ROOT = Path(__file__).resolve().parent / "predictors"
#: dataset (as hfmat.evaluation.reference.canonical_dataset names it) -> shipped predictor name
SHIPPED = {"perov_5": "property-predictor-perov5", "carbon_24": "property-predictor-carbon24"}


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
    """Per-property MLP ensembles on :mod:`~hfmat.evaluation.crystal_features` features."""

    def __init__(self, config: dict[str, Any], weights: Mapping[str, torch.Tensor]):
        self.config = config
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

    @torch.no_grad()
    def predict_features(self, features: np.ndarray, prop: str) -> np.ndarray:
        spec = self._spec(prop)
        x = np.asarray(features, dtype=float)
        out = np.full(len(x), np.nan)
        ok = np.isfinite(x).all(axis=1)
        if ok.any():
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
        """Write ``config.json`` and ``model.safetensors``. The MLP weights are stored in ``dtype``
        (float16 by default: half the size; they compute in float32 once loaded, so measure a
        predictor after loading it back, as the training script does)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
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
        return cls(config, load_file(str(path / WEIGHTS_NAME)))


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
    seed: int = 0,
    info: Mapping[str, Any] | None = None,
) -> PropertyPredictor:
    """Train a predictor of each property in ``targets`` (name -> value per crystal) on these
    crystals (or their precomputed ``features``, computed with ``table``). Each ensemble member
    trains with ``loss`` (``l1``, ``mse`` or ``huber`` on the standardised target; one for all or
    per property) and stops early on a seeded ``holdout_fraction`` of the rows (one per member), on
    the same loss; crystals without features or without a finite value are left out. ``info`` is stored in
    the config (dataset, split, ...)."""
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
    for name, values in targets.items():
        y_all = np.asarray(values, dtype=float)
        if len(y_all) != len(x_all):
            raise PredictorError(f"{name}: {len(y_all)} values for {len(x_all)} crystals")
        rows = np.flatnonzero(ok & np.isfinite(y_all))
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
    return PropertyPredictor(config, weights)

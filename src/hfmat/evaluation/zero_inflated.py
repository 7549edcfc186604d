"""A two-part regressor for a property that is exactly 0 for most crystals (perov-5 ``dir_gap``: 0 eV
for 96 % of them), where one regressor trained on every crystal does worse than predicting 0.

Part one, a gradient-boosted classifier with balanced class weights, says whether the value is
non-zero; part two, a gradient-boosted regressor with the absolute-error loss trained on the
non-zero training crystals only, says how large it is. The prediction is 0 where the classifier's
probability is below ``threshold``, else the regressor's value (clipped at ``clip_min``). Both parts
are scikit-learn's ``HistGradientBoosting*`` models, stored with skops (``skops.io``: a zip of JSON
and numpy arrays that loads only the types it is told to trust), not with pickle.

    model = ZeroInflatedRegressor.fit(x_train, y_train, seed=0)
    model.predict(x_test)
    model.save("dir_gap.skops"); ZeroInflatedRegressor.load("dir_gap.skops", threshold=0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The one type in these files that skops does not trust by default: the fitted trees of
#: ``HistGradientBoosting*``. Anything else in a file is refused.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
INSTALL_HINT = "pip install 'hfmat[eval]' (scikit-learn and skops)"


class ZeroInflatedError(ValueError):
    """A two-part model file that cannot be read, or data it cannot be fitted on."""


def _skops_io():
    try:
        import skops.io as sio
    except ImportError as err:
        raise ZeroInflatedError(f"two-part gradient-boosted models need skops: {INSTALL_HINT}") from err
    return sio


@dataclass
class ZeroInflatedRegressor:
    classifier: Any
    regressor: Any
    threshold: float = 0.5
    clip_min: float | None = None

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, seed: int = 0, max_iter: int = 300, threshold: float = 0.5
    ) -> ZeroInflatedRegressor:
        """Fit both parts on features ``x`` [n, f] and values ``y`` [n] (finite rows only)."""
        try:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        except ImportError as err:
            raise ZeroInflatedError(
                f"two-part gradient-boosted models need scikit-learn: {INSTALL_HINT}"
            ) from err
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        nonzero = y != 0
        if nonzero.sum() < 10 or (~nonzero).sum() < 10:
            raise ZeroInflatedError(
                f"a two-part model needs at least 10 zero and 10 non-zero training values "
                f"(got {int((~nonzero).sum())} and {int(nonzero.sum())})"
            )
        classifier = HistGradientBoostingClassifier(
            max_iter=max_iter, class_weight="balanced", random_state=seed
        )
        classifier.fit(x, nonzero)
        regressor = HistGradientBoostingRegressor(loss="absolute_error", max_iter=max_iter, random_state=seed)
        regressor.fit(x[nonzero], y[nonzero])
        clip_min = 0.0 if (y >= 0).all() else None
        return cls(classifier, regressor, threshold, clip_min)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """The classifier's probability that each value is non-zero."""
        return self.classifier.predict_proba(np.asarray(x, dtype=float))[:, 1]

    def size(self, x: np.ndarray) -> np.ndarray:
        """The regressor's value for every row (clipped at ``clip_min``), whatever the classifier says."""
        size = self.regressor.predict(np.asarray(x, dtype=float))
        return size if self.clip_min is None else np.clip(size, self.clip_min, None)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(self.probability(x) >= self.threshold, self.size(x), 0.0)

    def save(self, path: str | Path) -> Path:
        """Write both parts to one skops file (the threshold and clip go in the caller's config)."""
        path = Path(path)
        import zipfile

        parts = {"classifier": self.classifier, "regressor": self.regressor}
        _skops_io().dump(parts, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
        return path

    @classmethod
    def load(
        cls, path: str | Path, threshold: float = 0.5, clip_min: float | None = None
    ) -> ZeroInflatedRegressor:
        """Read a file :meth:`save` wrote; refuses a file holding any type beyond the trusted ones."""
        sio = _skops_io()
        path = Path(path)
        if not path.is_file():
            raise ZeroInflatedError(f"{path}: no such file")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as err:  # not a zip / no schema: a truncated or foreign file
            raise ZeroInflatedError(f"{path} is not a skops file ({type(err).__name__}: {err})") from None
        foreign = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if foreign:
            raise ZeroInflatedError(f"{path} holds types hfmat does not load: {', '.join(foreign)}")
        try:
            parts = sio.load(path, trusted=list(untrusted))
        except Exception as err:
            import sklearn

            raise ZeroInflatedError(
                f"{path} could not be read with scikit-learn {sklearn.__version__} "
                f"({type(err).__name__}: {err})"
            ) from None
        if not isinstance(parts, dict) or set(parts) != {"classifier", "regressor"}:
            raise ZeroInflatedError(f"{path} does not hold a classifier and a regressor")
        return cls(parts["classifier"], parts["regressor"], threshold, clip_min)

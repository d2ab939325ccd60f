"""The value policy's error model: expected absolute count error of each counter per tile.

Onboard: a non-negative linear model of the count and the calibrated doubt (1 - confidence);
ground, per JPEG quality: a + b * count, with the ground's bias per quality
(``ground_scale``) that aggregation multiplies ground counts by. Fit by non-negative least
squares (scikit-learn) on tiles with known truth (``targetfuse calibrate``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shared.pipeline.ground_bias import fit_ground_scale


def onboard_features(count: np.ndarray, conf: np.ndarray) -> np.ndarray:
    c = np.maximum(np.asarray(count, float), 0)
    u = 1 - np.asarray(conf, float)
    return np.stack([np.ones_like(c), c, u, u * c], axis=-1)


@dataclass
class ErrorModel:
    """Expected absolute count error of each counter on one tile, and the ground's bias.

    Onboard: ``w . [1, count, 1 - conf, (1 - conf) * count]``: the error grows with the
    count and with the doubt the calibrated confidence expresses. Ground, per JPEG quality:
    ``a + b * count``, and ``ground_scale[q]`` = true objects per ground-counted object on
    tiles received at quality q (compression blurs objects away: a bias that adds up over a
    scene while per-tile errors stay small; aggregation multiplies ground counts by it).
    An uncounted tile's error is the mean tile count. All weights >= 0, least squares on
    training tiles (``fit``).
    """

    onboard: list[float]
    ground: dict[str, list[float]]  # str(quality) -> [a, b]
    prior_count: float
    ground_scale: dict[str, float] = field(default_factory=dict)
    fit_on: dict = field(default_factory=dict)

    def onboard_error(self, count: np.ndarray, conf: np.ndarray) -> np.ndarray:
        count = np.asarray(count, float)
        conf = np.nan_to_num(np.asarray(conf, float), nan=0.0)
        err = onboard_features(np.nan_to_num(count), conf) @ np.asarray(self.onboard)
        return np.where(np.isnan(count), self.prior_count, err)

    def ground_error(self, count: np.ndarray, quality: int) -> np.ndarray:
        a, b = self._nearest(self.ground, quality)
        c = np.nan_to_num(np.asarray(count, float), nan=self.prior_count)
        return a + b * np.maximum(c, 0)

    def scale(self, quality: int) -> float:
        return float(self._nearest(self.ground_scale, quality)) if self.ground_scale else 1.0

    @staticmethod
    def _nearest(table: dict, quality: int):
        qs = sorted(int(q) for q in table)
        # Unknown quality: the nearest fitted one at or below it (never optimistic).
        below = [q for q in qs if q <= quality] or qs[:1]
        return table[str(below[-1])]

    @classmethod
    def fit(cls, truth: np.ndarray, onboard: np.ndarray, conf: np.ndarray,
            ground: dict[int, np.ndarray], meta: dict | None = None,
            sources: np.ndarray | None = None) -> ErrorModel:
        """``sources``: each tile's source, where the tiles come from several; the ground's
        bias is then fit by the estimator that transfers best to a left-out source
        (``shared.pipeline.ground_bias``), else pooled over every tile."""
        truth, onboard = np.asarray(truth, float), np.asarray(onboard, float)
        w_on = _fit_positive(onboard_features(onboard, conf), np.abs(onboard - truth))
        meta = dict(meta or {"tiles": int(len(truth))})
        if sources is not None:
            scale, meta["ground_scale_fit"] = fit_ground_scale(truth, ground, sources)
        else:
            scale = {str(q): float(truth.sum() / np.sum(g)) if np.sum(g) > 0 else 1.0
                     for q, g in ground.items()}
        ground_coef = {}
        for q, g in ground.items():
            x = np.stack([np.ones_like(onboard), np.maximum(onboard, 0)], axis=1)
            ground_coef[str(q)] = _fit_positive(x, np.abs(scale[str(q)] * np.asarray(g, float)
                                                          - truth))
        return cls(w_on, ground_coef, float(truth.mean()), scale, meta)

    def save(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> ErrorModel:
        return cls(**json.loads(Path(path).read_text()))


def fit_onboard_weights(count: np.ndarray, conf: np.ndarray, error: np.ndarray,
                        weight: np.ndarray | None = None) -> list[float]:
    """The onboard part's weights (``ErrorModel.onboard``) fit on tiles' absolute errors
    (each tile weighted by ``weight``: how many tiles it stands for)."""
    return _fit_positive(onboard_features(count, conf), np.asarray(error, float), weight)


def _fit_positive(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
                  ) -> list[float]:
    """(Weighted) least squares ``y ~ x @ w`` with every weight >= 0."""
    from sklearn.linear_model import LinearRegression

    if len(y) < x.shape[1]:
        return [float(y.mean()) if len(y) else 0.0] + [0.0] * (x.shape[1] - 1)
    lr = LinearRegression(positive=True, fit_intercept=False).fit(x, y, sample_weight=weight)
    return [float(v) for v in lr.coef_]

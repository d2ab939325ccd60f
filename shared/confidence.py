"""Per-tile confidence of the onboard counter: the calibrated probability its count is right.

**Right** means ``|predicted - true| < 0.5 + floor(0.1 * true)``: the rounded count is exact
for up to 9 objects, may be off by one from 10 to 19, by two from 20 to 29, and so on (the
tolerance grows with the count, as a relative error does). The true count of a tile is the number of
objects whose centre lies in it.

The confidence is learnt from features of the counter's own outputs, all cheap to compute
onboard: the count and its log, its distance to the nearest integer, how peaked and how
spread the density is, the share of density mass on the tile border (objects cut by the tile
edge are where density counters go wrong), the mask head's area, mean and uncertainty,
density per mask pixel, and the gap between the count and the number of density peaks.
A logistic regression on standardised features (fit on the training split) gives a score;
isotonic regression fit on the validation split maps the score to a probability. Both are
stored as plain numbers in JSON (no pickle) and applied with numpy.

**Two regimes.** A tile the counter sees as empty and a tile where it counts objects err for
different reasons (a missed object against a miscount), and one logistic regression fit on
both ranks the second kind by the first kind's cues: on tiles that hold objects it ranked
errors below chance. So tiles whose count reaches ``busy_from`` (0.5: the rounded count is
not zero) get their own regression and calibration (``busy``), fit on the training and
validation tiles of that kind; the rest keep the main one. Chosen on validation (AUROC over
tiles holding objects 0.58 -> 0.67, over all tiles 0.905 -> 0.923, for the objects pair).

**Imagery unlike the training data.** A calibration fit on the training distribution says
nothing about tiles far from it, where a counter fails without its outputs looking odd. So
the counter also exports its deepest features pooled over the tile, and the confidence
measures the tile's Mahalanobis distance ``d`` from the training tiles' features (mean and
Ledoit-Wolf shrunk covariance of the training split). Up to ``ood_ref`` (the 99th
percentile of the validation tiles' distances) nothing changes; beyond it the probability
is multiplied by ``(ood_ref / d) ** ood_power``, so tiles from unfamiliar imagery rank
below familiar ones and the throttle sends them down rather than accepting them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

FEATURE_NAMES = ["count", "log_count", "frac", "peak_share", "spread", "border_share",
                 "mask_area", "mask_mean", "mask_uncertainty", "count_per_mask", "peak_gap"]


def is_right(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    predicted, truth = np.asarray(predicted, float), np.asarray(truth, float)
    return np.abs(predicted - truth) < 0.5 + np.floor(0.1 * truth)


def tile_features(density: np.ndarray, mask_logits: np.ndarray) -> np.ndarray:
    """(N, h, w) density and mask logits -> (N, len(FEATURE_NAMES)) features."""
    d = np.asarray(density, np.float64)
    n = d.shape[0]
    count = d.reshape(n, -1).sum(1)
    safe = count + 1e-2
    peak_share = d.reshape(n, -1).max(1) / safe
    # Spread: normalised entropy of the density (0 = one pixel, 1 = uniform).
    p = d.reshape(n, -1) / safe[:, None]
    spread = -(p * np.log(p + 1e-12)).sum(1) / np.log(p.shape[1])
    border = d.copy()
    border[:, 3:-3, 3:-3] = 0
    border_share = border.reshape(n, -1).sum(1) / safe
    prob = 1.0 / (1.0 + np.exp(-np.clip(mask_logits, -30, 30)))
    mask_area = (prob > 0.5).reshape(n, -1).mean(1)
    mask_mean = prob.reshape(n, -1).mean(1)
    uncertainty = (4 * prob * (1 - prob)).reshape(n, -1).mean(1)
    count_per_mask = count / (mask_area * d.shape[1] * d.shape[2] + 1.0)
    peaks = np.array([_peaks(t) for t in d])
    return np.stack([count, np.log1p(count), np.abs(count - np.round(count)), peak_share,
                     spread, border_share, mask_area, mask_mean, uncertainty, count_per_mask,
                     np.abs(peaks - count)], axis=1)


def _peaks(d: np.ndarray) -> int:
    import cv2  # here: the services' --help and settings load this module without OpenCV

    if d.max() <= 1e-4:
        return 0
    local_max = d >= cv2.dilate(d.astype(np.float32), np.ones((5, 5), np.uint8))
    return int((local_max & (d > 0.35 * d.max()) & (d > 1e-4)).sum())


@dataclass
class ConfidenceModel:
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    iso_x: list[float]
    iso_y: list[float]
    definition: str = "right = |predicted - true| < 0.5 + floor(0.1 * true)"
    ood_mean: list[float] | None = None
    ood_whiten: list[list[float]] | None = None  # L with L L^T = precision
    ood_ref: float | None = None
    ood_power: float = 2.0
    busy: dict | None = None  # the regression and calibration of tiles counting objects
    busy_from: float = 0.5  # ... from this count on
    # A monotone map {"x": [...], "y": [...]} applied last to the probability (familiarity
    # included), fit on the ground from what comes down (ground.recalibrate): None, none.
    recalibration: dict | None = None
    # The busy regime's own map (tiles counting from ``busy_from``), when the ground fit the
    # regimes apart: busy tiles take it instead of ``recalibration``.
    recalibration_busy: dict | None = None

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray | None]:
        """The fields' lists as float64 arrays, made once (the onboard service scores one
        tile at a time: converting the 112 x 112 whitening matrix per tile was most of the
        confidence's cost). ``fit_ood`` drops them."""
        return {name: None if getattr(self, name) is None else
                np.asarray(getattr(self, name), float)
                for name in ("mean", "scale", "coef", "ood_mean", "ood_whiten")}

    def score(self, features: np.ndarray) -> np.ndarray:
        a = self._arrays
        z = (np.asarray(features, float) - a["mean"]) / a["scale"]
        return 1.0 / (1.0 + np.exp(-(z @ a["coef"] + self.intercept)))

    @cached_property
    def _busy_model(self) -> ConfidenceModel | None:
        return None if self.busy is None else ConfidenceModel(**self.busy)

    def calibrated(self, features: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(self.score(features), self.iso_x, self.iso_y), 0.0, 1.0)

    def predict(self, features: np.ndarray, embedding: np.ndarray | None = None
                ) -> np.ndarray:
        """Calibrated probability that each tile's count is right, in [0, 1]; lowered for
        tiles whose features lie far from the training imagery's (``embedding`` given)."""
        features = np.asarray(features, float)
        p = self.calibrated(features)
        busy = self.is_busy(features)
        if self._busy_model is not None and len(features):
            p = np.where(busy, self._busy_model.calibrated(features), p)
        if embedding is not None and self.ood_mean is not None:
            p = p * self.familiarity(embedding)
        return self.recalibrated(p, busy)

    def is_busy(self, features: np.ndarray) -> np.ndarray:
        """Tiles of the busy regime: those whose count reaches ``busy_from``."""
        return np.asarray(features, float)[:, FEATURE_NAMES.index("count")] >= self.busy_from

    def recalibrated(self, p: np.ndarray, busy: np.ndarray | None = None) -> np.ndarray:
        """``p`` through the ground's recalibration map, when there is one (busy tiles
        through the busy regime's, when there is one and ``busy`` says which they are)."""
        p = np.asarray(p, float)
        out = p if self.recalibration is None else _through(self.recalibration, p)
        if busy is not None and self.recalibration_busy is not None:
            out = np.where(busy, _through(self.recalibration_busy, p), out)
        return out

    def with_recalibration(self, x: list[float], y: list[float], regime: str = "all"
                           ) -> ConfidenceModel:
        """This model with the map (x, y) applied after its own (composed with a map it
        already has: evaluated on a fine grid of its input), on every tile (``regime``
        "all") or on one regime's ("empty": counting under ``busy_from``; "busy"), the other
        regime keeping the map it has."""
        from dataclasses import replace

        if regime not in ("all", "empty", "busy"):
            raise ValueError(f"regime must be all, empty or busy, got {regime!r}")
        new = {"x": list(map(float, x)), "y": list(map(float, y))}
        own, busy_own = self.recalibration, self.recalibration_busy
        if regime != "all" and busy_own is None:
            busy_own = own or IDENTITY  # the busy tiles keep what they have had so far
        if regime in ("all", "empty"):
            own = _composed(own, new)
        if regime == "busy" or (regime == "all" and busy_own is not None):
            busy_own = _composed(busy_own, new)
        return replace(self, recalibration=own, recalibration_busy=busy_own)

    def distance(self, embedding: np.ndarray) -> np.ndarray:
        a = self._arrays
        z = (np.asarray(embedding, float) - a["ood_mean"]) @ a["ood_whiten"]
        return np.sqrt((z * z).sum(axis=1))

    def familiarity(self, embedding: np.ndarray) -> np.ndarray:
        """1 inside the training imagery's range, falling as ``(ref / d) ** power`` beyond."""
        d = self.distance(embedding)
        return np.minimum(1.0, self.ood_ref / np.maximum(d, 1e-9)) ** self.ood_power

    def fit_ood(self, train_embedding: np.ndarray, val_embedding: np.ndarray,
                quantile: float = 0.99) -> None:
        from sklearn.covariance import LedoitWolf

        cov = LedoitWolf().fit(np.asarray(train_embedding, float))
        self.ood_mean = cov.location_.tolist()
        self.ood_whiten = np.linalg.cholesky(cov.precision_).tolist()
        self.__dict__.pop("_arrays", None)  # made from the fields this replaced
        self.ood_ref = float(np.quantile(self.distance(val_embedding), quantile))

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> ConfidenceModel:
        return cls(**json.loads(Path(path).read_text()))


IDENTITY = {"x": [0.0, 1.0], "y": [0.0, 1.0]}


def _through(m: dict, p: np.ndarray) -> np.ndarray:
    return np.clip(np.interp(p, m["x"], m["y"]), 0.0, 1.0)


def _composed(first: dict | None, then: dict) -> dict:
    """The map ``then`` after ``first`` (None: ``then`` alone), on a fine grid of the input."""
    if first is None:
        return then
    grid = np.unique(np.r_[np.linspace(0, 1, 201), first["x"]])
    return {"x": grid.tolist(), "y": _through(then, _through(first, grid)).tolist()}


# A regime gets its own regression only with this many tiles of each outcome in each split.
MIN_REGIME_TILES = 20


def fit_confidence(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
                   val_y: np.ndarray, seed: int = 0, busy_from: float | None = 0.5
                   ) -> ConfidenceModel:
    """The main model on every tile and, where both splits hold enough tiles counting
    objects (``busy_from``; None: one regime), the busy regime's own."""
    model = _fit_one(train_x, train_y, val_x, val_y, seed)
    if busy_from is None:
        return model
    col = FEATURE_NAMES.index("count")
    tb, vb = train_x[:, col] >= busy_from, val_x[:, col] >= busy_from
    if all(min(int(y[m].sum()), int((~y[m]).sum())) >= MIN_REGIME_TILES
           for y, m in ((np.asarray(train_y, bool), tb), (np.asarray(val_y, bool), vb))):
        busy = _fit_one(train_x[tb], train_y[tb], val_x[vb], val_y[vb], seed)
        model.busy = {k: getattr(busy, k) for k in ("mean", "scale", "coef", "intercept",
                                                      "iso_x", "iso_y")}
        model.busy_from = busy_from
    return model


def _fit_one(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
             val_y: np.ndarray, seed: int = 0) -> ConfidenceModel:
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    mean, scale = train_x.mean(0), train_x.std(0) + 1e-9
    lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    lr.fit((train_x - mean) / scale, train_y.astype(int))
    model = ConfidenceModel(mean.tolist(), scale.tolist(), lr.coef_[0].tolist(),
                            float(lr.intercept_[0]), [0.0, 1.0], [0.0, 1.0])
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(model.score(val_x), val_y.astype(float))
    model.iso_x = iso.X_thresholds_.tolist()
    model.iso_y = iso.y_thresholds_.tolist()
    return model


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).astype(int)
    if not labels.size or labels.min() == labels.max():  # undefined without both kinds
        return None
    return float(roc_auc_score(labels, scores))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    probs, labels = np.asarray(probs, float), np.asarray(labels, float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(labels[sel].mean() - probs[sel].mean())
    return float(err)

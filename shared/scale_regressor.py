"""A scene's ground sample distance regressed from the onboard counter's own features.

The counter's pooled features of a tile change with the scale the tile shows (a 256 px tile
of a 0.05 m drone frame is a slice of one boat, of a 2 m scene a whole harbour). Each sampled
tile of a scene is shown to the counter at several sizes, cut at ``presentations`` x the
counter's input in the scene's own pixels and resized to the input, and a ridge regression
on the standardised, concatenated features predicts log10 of the scene's GSD; the scene's
estimate is the median over its tiles. The regression is fit in the lab
(``targetfuse fit-scale-estimate``) on the training splits of the sources whose GSD is known,
each image also shown downsampled to coarser GSDs, and shipped beside the onboard card
(``extra.scale_regressor``). Measured against the earlier nearest-features choice among
five candidate GSDs in models/README.md; an estimate outside the GSD a sensor has
(``shared.limits.GSD_M``) is clipped into it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ScaleRegressor:
    presentations: tuple[int, ...]  # tile sizes as multiples of the counter's input
    mean: tuple[float, ...]  # per feature, over the training tiles
    std: tuple[float, ...]
    coef: tuple[float, ...]  # ridge weights on the standardised features -> log10 GSD
    intercept: float

    def __post_init__(self):
        n = len(self.coef)
        if not self.presentations or any(int(p) < 1 for p in self.presentations):
            raise ValueError(f"presentations must be positive multiples, got "
                             f"{self.presentations}")
        if n == 0 or len(self.mean) != n or len(self.std) != n:
            raise ValueError(f"scale regressor: {len(self.mean)} means, {len(self.std)} "
                             f"scales and {n} weights do not match")
        values = (*self.mean, *self.std, *self.coef, self.intercept)
        if not all(math.isfinite(v) for v in values) or min(self.std) <= 0:
            raise ValueError("scale regressor: every number must be finite, every scale > 0")

    @property
    def features(self) -> int:
        return len(self.coef)

    def predict_log10(self, features: np.ndarray) -> np.ndarray:
        """log10 GSD per row of (n, features) concatenated features."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"expected (n, {self.features}) features, got {x.shape}")
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return z @ np.asarray(self.coef) + self.intercept

    def scene_gsd(self, features: np.ndarray) -> float:
        """The scene's GSD: the median of its tiles' estimates, within a sensor's range."""
        from shared.limits import GSD_M  # here: limits pulls in OpenCV, a bundle need not

        log10 = float(np.median(self.predict_log10(features)))
        return float(np.clip(10.0 ** log10, *GSD_M))

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: Path | str) -> ScaleRegressor:
        try:
            data = json.loads(Path(path).read_text())
            return cls(tuple(int(p) for p in data["presentations"]),
                       tuple(float(v) for v in data["mean"]),
                       tuple(float(v) for v in data["std"]),
                       tuple(float(v) for v in data["coef"]), float(data["intercept"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a scale regressor ({exc})") from exc

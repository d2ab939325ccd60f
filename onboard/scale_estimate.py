"""Estimating a scene's ground sample distance from its pixels when nobody gave it.

A counter learns objects at the sizes its training imagery shows them (0.5 m/px, with a
0.5-2x spread from scale augmentation). A scene of unknown GSD may be far outside that (a
0.13 m aerial frame shows cars four times larger). For a few candidate GSDs the counter
looks at a handful of the scene's tiles resampled as if the scene were at that GSD, and the
candidate whose tiles' features lie closest to the training tiles' features (mean
Mahalanobis distance, the measure the confidence uses: ``shared.confidence``) is taken. It
needs a counter whose confidence carries the training features' statistics; without them
there is no estimate and the scene is counted at the counter's own GSD, as before. The
estimate is reported as such (``gsd_source: "estimated"``), never as a given GSD.

A pair that ships a GSD regressor (``shared.scale_regressor``, ``extra.scale_regressor`` on
the onboard card) is estimated by it instead: the same sampled tiles, each shown at the
regressor's sizes, and the median of their regressed GSDs, a continuous value where the
nearest-features choice can only pick one of the candidates (measured against it on the
validation splits, models/README.md).
"""

from __future__ import annotations

import numpy as np

from shared.preprocess import tile_px
from shared.tile_grid import TileGrid

# Scene GSD candidates as multiples of the counter's GSD: 0.05-1 m at the 0.5 m counters,
# drone frames to satellite scenes. Without the 0.05 m candidate (0.125 m the finest) the
# drone marinas, at 0.05 m, were estimated at 0.5 m and counted 10x too large; adding it cut
# the ground's relative CMAE with the GSD withheld on the validation splits from 1.69 to
# 0.62 on VEDAI vehicles and 0.57 to 0.34 on the marinas' boats (Airbus unchanged, 0.108).
FACTORS = (0.1, 0.25, 0.5, 1.0, 2.0)
SAMPLE_TILES = 6


def sample_tiles(pixels, tile_size: int, count: int = SAMPLE_TILES) -> list[np.ndarray]:
    """Up to ``count`` whole tiles spread evenly over the scene's grid (row-major stride)."""
    h, w = pixels.shape[:2]
    grid = TileGrid(w, h, min(tile_size, w, h))
    picks = np.unique(np.linspace(0, len(grid) - 1, min(count, len(grid))).round().astype(int))
    return [grid.crop(pixels, int(i)) for i in picks]


def presented_features(counter, pixels, presentations) -> np.ndarray | None:
    """(tiles, features): the sampled tiles' pooled features at each presentation size
    (``presentations`` x the counter's input, in the scene's pixels), concatenated; what
    the regressor is fit on and reads. None: the counter gives no features."""
    per_size = []
    for multiple in presentations:
        size = counter.input_size * multiple
        run, _ = counter.run_at(sample_tiles(pixels, size), size)
        if run.embedding is None:
            return None
        per_size.append(run.embedding)
    n = min(len(e) for e in per_size)  # a small scene has fewer large tiles
    return np.concatenate([e[:n] for e in per_size], axis=1)


def regressed_gsd(counter, pixels, regressor) -> float | None:
    """The regressor's GSD of a scene (None: the counter gives no features)."""
    features = presented_features(counter, pixels, regressor.presentations)
    return None if features is None else regressor.scene_gsd(features)


def estimate_gsd(counter, pixels, factors=FACTORS) -> tuple[float | None, dict[float, float]]:
    """(estimated GSD or None, mean feature distance per candidate GSD: empty when the
    pair's regressor made the estimate)."""
    regressor = getattr(getattr(counter, "bundle", None), "scale_regressor", None)
    if regressor is not None:
        return regressed_gsd(counter, pixels, regressor), {}
    conf = getattr(counter, "confidence", None)
    if conf is None or conf.ood_mean is None:
        return None, {}
    model_gsd = counter.card.model_gsd_m
    distances = {}
    for f in factors:
        gsd = model_gsd * f
        size = tile_px(counter.input_size, model_gsd, gsd)
        tiles = sample_tiles(pixels, size)
        run, _ = counter.run_at(tiles, size)
        if run.embedding is None:
            return None, {}
        distances[gsd] = float(conf.distance(run.embedding).mean())
    return min(distances, key=distances.get), distances

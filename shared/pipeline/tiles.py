"""A scene's tiles before anything is counted.

``LazyTiles`` crops each tile from the scene's pixels only when asked for (the pixels may be a
windowed reader, so a large scene is never in memory whole); ``prepare_tiles`` makes one pass
over them for what planning needs first: the encoded size of each tile at each offered
quality, and the thumbnails and descriptors deduplication groups and verifies tiles by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.pipeline import dedup
from shared.pipeline.codec import downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.tile_grid import TileGrid


class LazyTiles(Sequence):
    """A scene's tiles, cropped from its pixels when asked for.

    ``pixels`` is anything with ``shape`` and 2-D slicing that returns an RGB array: a numpy
    array, or a reader that fetches only the window asked for (``onboard.processing``'s
    GeoTIFF source), so a large scene never has to be in memory whole."""

    def __init__(self, grid: TileGrid, pixels):
        self.grid, self.pixels = grid, pixels

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.grid.crop(self.pixels, int(i))


@dataclass
class PreparedTiles:
    """What a scene's tiles are before anything is counted (depends only on the pixels, the
    tile size and the deduplication settings, so the simulator reuses it across sweeps)."""

    grid: TileGrid
    tiles: Sequence[np.ndarray]
    sizes: dict[int, np.ndarray]
    thumbs: list[np.ndarray]
    contexts: dedup.ContextPlan


def prepare_tiles(pixels, tile_size: int, cfg: PipelineConfig,
                  input_size: int | None = None) -> PreparedTiles:
    """One pass over the tiles (each read once): encoded sizes of what would go down at each
    quality, thumbnails and descriptors. ``input_size``: the counter's, for resized
    downlinks (``cfg.sends_resized``)."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
    n = len(grid)
    tiles = LazyTiles(grid, pixels)
    resize = input_size if cfg.sends_resized else None
    sizes = {q: np.zeros(n, np.int64) for q in cfg.all_qualities}
    thumbs, descriptors = [], []
    for i in range(n):
        tile = tiles[i]
        sent = downlink_pixels(tile, tile_size, resize)
        for q in cfg.all_qualities:
            sizes[q][i] = len(encode_tile(sent, q))
        if cfg.dedup:
            thumbs.append(dedup.thumbnail(tile, tile_size))
            descriptors.append(dedup.descriptor(tile))
    if cfg.dedup and n:
        plan = dedup.plan_contexts(np.stack(descriptors), cfg.k_max, cfg.seed)
    else:
        plan = dedup.ContextPlan(np.zeros(n, np.int64), np.arange(n), 1)
    return PreparedTiles(grid, tiles, sizes, thumbs, plan)

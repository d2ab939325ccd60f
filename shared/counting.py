"""Counting a scene tile by tile with any density counter (ONNX onboard, PyTorch on ground).

The scene is cut on a :class:`~shared.tile_grid.TileGrid`; each tile is prepared for the
counter (``shared.preprocess``), tiles go through the counter in batches, and each tile's
count is the sum of its density map. The counter is any callable taking a float32 batch
(N, 3, S, S) and returning (density (N, 1, h, w), mask logits (N, 1, h, w)), so both
runtimes share this code and its tile geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from shared.model_card import ModelCard
from shared.preprocess import prepare_tile, tile_px
from shared.tile_grid import TileGrid

RunBatch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class TileOutputs:
    grid: TileGrid
    counts: np.ndarray  # (n_tiles,) float
    density: np.ndarray  # (n_tiles, h, w) float32
    mask_logits: np.ndarray  # (n_tiles, h, w) float32

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def run_tiles(run_batch: RunBatch, tiles: Iterable[np.ndarray], input_size: int, scale: float,
              batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, density maps and mask logits for uint8 RGB tiles, in order."""
    dens_out, mask_out, batch = [], [], []

    def flush() -> None:
        d, m = run_batch(np.stack(batch))
        dens_out.append(np.asarray(d, np.float32)[:, 0])
        mask_out.append(np.asarray(m, np.float32)[:, 0])
        batch.clear()

    for tile in tiles:
        batch.append(prepare_tile(tile, input_size, scale))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not dens_out:
        empty = np.zeros((0, 1, 1), np.float32)
        return np.zeros(0), empty, empty
    density = np.concatenate(dens_out)
    return density.sum(axis=(1, 2)).astype(np.float64), density, np.concatenate(mask_out)


class TileCounter:
    """What both counters share: tile geometry from their card, counting a whole scene.

    Subclasses set ``card`` (a :class:`~shared.model_card.ModelCard`), ``batch_size`` and
    ``run_batch``. A tile covers ``tile_size`` source pixels (the counter's natural size at
    the scene's GSD unless given) and is always scaled by the scene-to-counter GSD ratio.
    """

    card: ModelCard
    batch_size: int

    def run_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def tile_size_for(self, scene_gsd: float | None) -> int:
        return tile_px(self.card.input_size, self.card.model_gsd_m, scene_gsd)

    def inputs(self, pixels: np.ndarray, scene_gsd: float | None) -> Iterator[np.ndarray]:
        """The scene's tiles prepared as this counter's inputs."""
        natural = self.tile_size_for(scene_gsd)
        return scene_inputs(pixels, natural, self.card.input_size, self.card.input_size / natural)

    def count_tiles(self, pixels: np.ndarray, scene_gsd: float | None,
                    tile_size: int | None = None) -> TileOutputs:
        natural = self.tile_size_for(scene_gsd)
        return count_scene(self.run_batch, pixels, tile_size or natural, self.card.input_size,
                           self.card.input_size / natural, self.batch_size)


def scene_tiles(pixels: np.ndarray, tile_size: int) -> tuple[TileGrid, Iterator[np.ndarray]]:
    """The scene's tile grid and its tiles' pixels, in grid order."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
    return grid, (grid.crop(pixels, i) for i in range(len(grid)))


def scene_inputs(pixels: np.ndarray, tile_size: int, input_size: int,
                 scale: float) -> Iterator[np.ndarray]:
    """Every tile of a scene prepared as a counter input, in grid order."""
    _, tiles = scene_tiles(pixels, tile_size)
    return (prepare_tile(tile, input_size, scale) for tile in tiles)


def count_scene(run_batch: RunBatch, pixels: np.ndarray, tile_size: int, input_size: int,
                scale: float, batch_size: int = 8) -> TileOutputs:
    """Count every tile of a scene held in memory."""
    grid, tiles = scene_tiles(pixels, tile_size)
    counts, density, masks = run_tiles(run_batch, tiles, input_size, scale, batch_size)
    return TileOutputs(grid, counts, density, masks)

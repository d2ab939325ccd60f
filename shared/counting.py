"""Counting a scene tile by tile with any density counter (ONNX onboard, PyTorch on ground).

The scene is cut on a :class:`~shared.tile_grid.TileGrid`; each tile is prepared for the
counter (``shared.preprocess``), tiles go through the counter in batches, and each tile's
count is the sum of its density map. The counter is any callable taking a float32 batch
(N, 3, S, S) and returning (density (N, C, h, w), mask logits (N, C, h, w)), one channel per
class it counts, and optionally a feature vector per tile (N, F: the onboard counter's pooled
features, for out-of-distribution-aware confidence), so both runtimes share this code and
its tile geometry.

A request names the classes it wants (``channels``: indices into the card's classes; default
all). Each tile's ``counts`` is the sum over those classes, its density map their sum and its
mask their pixel-wise maximum, so tiling, confidence, throttling and deduplication see one
"objects the user asked for" signal; ``class_counts`` keeps every class's own count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from shared.model_card import ModelCard
from shared.preprocess import (
    NORMALISED_INPUT,
    input_convention,
    limit_detail,
    prepare_tile,
    tile_px,
)
from shared.tile_grid import TileGrid

RunBatch = Callable[[np.ndarray], tuple[np.ndarray, ...]]


@dataclass
class TileOutputs:
    grid: TileGrid
    counts: np.ndarray  # (n_tiles,) float, over the requested classes
    density: np.ndarray  # (n_tiles, h, w) float32, summed over the requested classes
    mask_logits: np.ndarray  # (n_tiles, h, w) float32, max over the requested classes
    class_counts: np.ndarray | None = None  # (n_tiles, C) every class's count
    embedding: np.ndarray | None = None  # (n_tiles, F) when the counter gives features

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def class_totals(self) -> np.ndarray:
        """(C,) the scene's count per class."""
        return self.class_counts.sum(axis=0) if self.class_counts is not None else \
            np.array([self.total])


class TileRun(NamedTuple):
    counts: np.ndarray  # (n,) over the requested classes
    density: np.ndarray  # (n, h, w)
    mask_logits: np.ndarray  # (n, h, w)
    class_counts: np.ndarray  # (n, C) every class
    embedding: np.ndarray | None = None  # (n, F)


def combine(density: np.ndarray, masks: np.ndarray, channels: Sequence[int] | None,
            embedding: np.ndarray | None = None) -> TileRun:
    """(n, C, h, w) outputs -> the requested classes' combined maps and every class's count."""
    class_counts = density.sum(axis=(2, 3)).astype(np.float64)
    sel = list(range(density.shape[1])) if channels is None else list(channels)
    d = density[:, sel].sum(axis=1)
    m = masks[:, sel].max(axis=1)
    return TileRun(class_counts[:, sel].sum(axis=1), d, m, class_counts, embedding)


def run_tiles(run_batch: RunBatch, tiles: Iterable[np.ndarray], input_size: int, scale: float,
              batch_size: int = 8, channels: Sequence[int] | None = None,
              convention: str = NORMALISED_INPUT) -> TileRun:
    """Counts, density maps and mask logits for uint8 RGB tiles, in order (``convention``:
    the counter's input convention, ``shared.preprocess``)."""
    dens_out, mask_out, emb_out, batch = [], [], [], []

    def flush() -> None:
        out = run_batch(np.stack(batch))
        dens_out.append(np.asarray(out[0], np.float32))
        mask_out.append(np.asarray(out[1], np.float32))
        if len(out) > 2:
            emb_out.append(np.asarray(out[2], np.float32).reshape(len(batch), -1))
        batch.clear()

    for tile in tiles:
        batch.append(prepare_tile(tile, input_size, scale, convention))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not dens_out:
        empty = np.zeros((0, 1, 1), np.float32)
        n_classes = 1 if channels is None else max(len(channels), 1)
        return TileRun(np.zeros(0), empty, empty, np.zeros((0, n_classes)))
    embedding = np.concatenate(emb_out) if emb_out else None
    return combine(np.concatenate(dens_out), np.concatenate(mask_out), channels, embedding)


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

    def scaled(self, density: np.ndarray) -> np.ndarray:
        """(N, C, h, w) density times the card's per-class count scale (``extra.count_scale``,
        fit on validation scenes by ``targetfuse fit-count-scale``: a counter that undercounts
        every class by a steady share is corrected without retraining); as is without one."""
        scale = self.card.extra.get("count_scale")
        if not scale:
            return density
        per_class = np.array([scale.get(c, 1.0) for c in self.card.classes], np.float32)
        return density * per_class[None, :, None, None]

    @property
    def input_convention(self) -> str:
        """What this counter's input tensor holds (``shared.preprocess``)."""
        return input_convention(self.card.extra)

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    def channels(self, classes: Sequence[str] | None) -> list[int] | None:
        """Output channels of the requested classes (None: every class the counter counts).
        A class the counter does not count is a ValueError naming the ones it does."""
        if not classes:
            return None
        unknown = [c for c in classes if c not in self.card.classes]
        if unknown:
            raise ValueError(f"{self.card.name} counts {', '.join(self.card.classes)}; not "
                             f"{', '.join(unknown)}")
        return [self.card.classes.index(c) for c in classes]

    def tile_size_for(self, scene_gsd: float | None) -> int:
        """Source pixels per tile; a scene without a GSD is taken to be at the card's
        ``detail_gsd_m`` where it has one (the GSD of the tiles such a counter is sent)."""
        return tile_px(self.card.input_size, self.card.model_gsd_m,
                       scene_gsd or self.card.detail_gsd_m)

    def inputs(self, pixels: np.ndarray, scene_gsd: float | None) -> Iterator[np.ndarray]:
        """The scene's tiles prepared as this counter's inputs."""
        natural = self.tile_size_for(scene_gsd)
        return scene_inputs(pixels, natural, self.card.input_size, self.card.input_size / natural,
                            self.input_convention)

    def count_tiles(self, pixels: np.ndarray, scene_gsd: float | None,
                    tile_size: int | None = None, classes: Sequence[str] | None = None
                    ) -> TileOutputs:
        natural = self.tile_size_for(scene_gsd)
        pixels = limit_detail(pixels, scene_gsd, self.card.detail_gsd_m)
        return count_scene(self.run_batch, pixels, tile_size or natural, self.card.input_size,
                           self.card.input_size / natural, self.batch_size,
                           channels=self.channels(classes), convention=self.input_convention)


def scene_tiles(pixels: np.ndarray, tile_size: int) -> tuple[TileGrid, Iterator[np.ndarray]]:
    """The scene's tile grid and its tiles' pixels, in grid order."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
    return grid, (grid.crop(pixels, i) for i in range(len(grid)))


def scene_inputs(pixels: np.ndarray, tile_size: int, input_size: int,
                 scale: float, convention: str = NORMALISED_INPUT) -> Iterator[np.ndarray]:
    """Every tile of a scene prepared as a counter input, in grid order."""
    _, tiles = scene_tiles(pixels, tile_size)
    return (prepare_tile(tile, input_size, scale, convention) for tile in tiles)


def count_scene(run_batch: RunBatch, pixels: np.ndarray, tile_size: int, input_size: int,
                scale: float, batch_size: int = 8, *, channels: Sequence[int] | None = None,
                convention: str = NORMALISED_INPUT) -> TileOutputs:
    """Count every tile of a scene held in memory."""
    grid, tiles = scene_tiles(pixels, tile_size)
    run = run_tiles(run_batch, tiles, input_size, scale, batch_size, channels, convention)
    return TileOutputs(grid, run.counts, run.density, run.mask_logits, run.class_counts,
                       run.embedding)

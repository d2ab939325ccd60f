"""A tile grid over a scene, and the true object count of every tile.

The grid starts at the scene's top-left corner and steps by ``tile_size`` pixels; the last
column and row are partial tiles when the scene size is not a multiple of the tile size, so
every pixel lies in exactly one tile and nothing is counted twice or lost. An object belongs
to the tile that holds its centre; a centre on a tile edge goes to the tile right/below it,
and a centre just outside the scene (objects cut by the border) to the nearest edge tile.
So the per-tile counts always add up to the scene's total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from shared.annotations import AnnotatedImage, ObjectAnnotation

# The most tiles a scene may have, on both ends of the link: a 20k x 20k scene cut into
# 128 px tiles has 24,414, so there is room above that, and none for a grid that could never
# complete or would make every scene listing carry a million rows. The onboard intake
# refuses a scene that would be cut finer; the ground rejects a header that says so.
MAX_TILES = 40_000


@dataclass(frozen=True)
class Tile:
    index: int  # row-major: row * cols + col
    row: int
    col: int
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class TileGrid:
    width: int
    height: int
    tile_size: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"scene size must be positive, got {self.width}x{self.height}")
        if self.tile_size <= 0:
            raise ValueError(f"tile size must be positive, got {self.tile_size}")

    @classmethod
    def for_image(cls, image: AnnotatedImage, tile_size: int) -> TileGrid:
        return cls(image.meta.width, image.meta.height, tile_size)

    @property
    def cols(self) -> int:
        return math.ceil(self.width / self.tile_size)

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.tile_size)

    def __len__(self) -> int:
        return self.rows * self.cols

    def tile(self, index: int) -> Tile:
        if not 0 <= index < len(self):
            raise IndexError(f"tile {index} outside 0..{len(self) - 1}")
        row, col = divmod(index, self.cols)
        x0, y0 = col * self.tile_size, row * self.tile_size
        return Tile(index, row, col, x0, y0, min(x0 + self.tile_size, self.width),
                    min(y0 + self.tile_size, self.height))

    def __iter__(self) -> Iterator[Tile]:
        return (self.tile(i) for i in range(len(self)))

    def tile_at(self, x: float, y: float) -> int:
        """Index of the tile holding point (x, y); points outside snap to the edge tile."""
        col = min(max(int(math.floor(x / self.tile_size)), 0), self.cols - 1)
        row = min(max(int(math.floor(y / self.tile_size)), 0), self.rows - 1)
        return row * self.cols + col

    def crop(self, pixels: np.ndarray, index: int) -> np.ndarray:
        t = self.tile(index)
        return pixels[t.y0:t.y1, t.x0:t.x1]


def true_counts(grid: TileGrid, objects: Iterable[ObjectAnnotation],
                classes: set[str] | None = None) -> np.ndarray:
    """Objects per tile by centre, shape (rows, cols), summing to the objects counted."""
    counts = np.zeros(len(grid), dtype=np.int64)
    for obj in objects:
        if classes is None or obj.class_name in classes:
            counts[grid.tile_at(*obj.centre)] += 1
    return counts.reshape(grid.rows, grid.cols)


def objects_in_tile(grid: TileGrid, objects: Iterable[ObjectAnnotation],
                    index: int) -> list[ObjectAnnotation]:
    """The objects whose centre lies in tile ``index``, in tile-local coordinates."""
    t = grid.tile(index)
    return [o.translated(-t.x0, -t.y0) for o in objects if grid.tile_at(*o.centre) == index]

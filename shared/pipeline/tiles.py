"""A scene's tiles before anything is counted.

``LazyTiles`` crops each tile from the scene's pixels only when asked for (the pixels may be a
windowed reader, so a large scene is never in memory whole); ``prepare_tiles`` makes one pass
over them for what planning needs first: the encoded size of each tile at each offered
quality, and the thumbnails and descriptors deduplication groups and verifies tiles by.

With ``spill_dir`` (the onboard service) what is kept per tile does not stay in memory:
thumbnails go to an unlinked scratch file (``SpillStore``), and so, up to ``spill_bytes``,
does each tile's counter input before padding (the tile resized to the counter's input, the
same pixels a resized downlink encodes), so counting a tile later reads it back from there
instead of cropping (decoding) and resizing it from the scene a second time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.pipeline import dedup
from shared.pipeline.codec import downlink_pixels, encoded_sizes
from shared.pipeline.config import PipelineConfig
from shared.pipeline.quicklook import Canvas
from shared.tile_grid import TileGrid


class LazyTiles(Sequence):
    """A scene's tiles, cropped from its pixels when asked for.

    ``pixels`` is anything with ``shape`` and 2-D slicing that returns an RGB array: a numpy
    array, or a reader that fetches only the window asked for (a GeoTIFF's:
    ``onboard.scene_pixels.RasterSource``), so a large scene never has to be in memory whole."""

    def __init__(self, grid: TileGrid, pixels):
        self.grid, self.pixels = grid, pixels

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.grid.crop(self.pixels, int(i))


class SpillStore(Sequence):
    """uint8 arrays, one per tile index, kept in an unlinked scratch file rather than in
    memory (what stays in memory is an offset and a shape per tile). ``put`` refuses (False)
    once ``max_bytes`` are stored; ``get`` gives None for a tile not stored. Reads are
    ``pread``s, not a memory map, so what is read back is not resident once dropped."""

    def __init__(self, n: int, directory: str | Path | None = None,
                 max_bytes: int | None = None):
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        # Unlinked at once: nothing is left behind, whatever ends the process.
        self._file = tempfile.TemporaryFile(dir=directory, prefix="tiles-")  # noqa: SIM115
        self._fd = self._file.fileno()
        self.max_bytes = max_bytes
        self.offset = np.full(n, -1, np.int64)
        self.shape = np.zeros((n, 3), np.int32)  # (h, w, channels; 0: two-dimensional)
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.offset)

    def put(self, i: int, a: np.ndarray) -> bool:
        a = np.ascontiguousarray(a, np.uint8)
        if self.max_bytes is not None and self.nbytes + a.nbytes > self.max_bytes:
            return False
        view, done = memoryview(a).cast("B"), 0
        while done < a.nbytes:
            done += os.pwrite(self._fd, view[done:], self.nbytes + done)
        self.offset[i] = self.nbytes
        self.shape[i] = (*a.shape, 0) if a.ndim == 2 else a.shape
        self.nbytes += a.nbytes
        return True

    def get(self, i: int) -> np.ndarray | None:
        offset = int(self.offset[i])
        if offset < 0:
            return None
        h, w, c = self.shape[i].tolist()
        shape, count = ((h, w, c), h * w * c) if c else ((h, w), h * w)
        data = os.pread(self._fd, count, offset)
        if len(data) != count:
            raise OSError(f"tile store: short read of tile {i}")
        return np.frombuffer(data, np.uint8).reshape(shape)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        a = self.get(int(i))
        if a is None:
            raise IndexError(f"tile {i} is not stored")
        return a

    def close(self) -> None:
        self._file.close()


@dataclass
class PreparedTiles:
    """What a scene's tiles are before anything is counted (depends only on the pixels, the
    tile size and the deduplication settings, so the simulator reuses it across sweeps)."""

    grid: TileGrid
    tiles: Sequence[np.ndarray]
    sizes: dict[int, np.ndarray]
    thumbs: Sequence[np.ndarray]
    contexts: dedup.ContextPlan
    # Tiles' counter inputs before padding, where kept (``prepare_tiles``'s ``spill_dir``):
    # each is the tile as cut at ``input_tile_size`` source pixels (resized to the input
    # when the tile is larger), so counting it gives exactly what counting the tile does.
    inputs: SpillStore | None = None
    input_tile_size: int | None = None

    def counter_tile(self, i: int) -> tuple[np.ndarray, int]:
        """Tile i's pixels for the counter and the tile size they are cut at: the kept
        input when there is one (no second read of the scene), else the tile itself."""
        if self.inputs is not None:
            kept = self.inputs.get(i)
            if kept is not None:
                return kept, int(self.input_tile_size)
        return self.tiles[i], self.grid.tile_size

    def sent_pixels(self, i: int, resize: int | None) -> np.ndarray:
        """What goes down for tile i (``codec.downlink_pixels`` of it): from the kept input
        when that is it."""
        size = self.grid.tile_size
        if self.inputs is not None and resize and (
                resize == self.input_tile_size if resize < size else
                self.input_tile_size == size):  # the kept input is what goes down
            kept = self.inputs.get(i)
            if kept is not None:
                return kept
        return downlink_pixels(self.tiles[i], self.grid.tile_size, resize)

    def close(self) -> None:
        """Drop the scratch files (a plan made from these tiles needs them no more)."""
        for store in (self.inputs, self.thumbs):
            if isinstance(store, SpillStore):
                store.close()


def prepare_tiles(pixels, tile_size: int, cfg: PipelineConfig,
                  input_size: int | None = None, spill_dir: str | Path | None = None,
                  spill_bytes: int = 0, canvas: Canvas | None = None) -> PreparedTiles:
    """One pass over the tiles (each read once): encoded sizes of what would go down at each
    quality, thumbnails and descriptors. ``input_size``: the counter's, for resized
    downlinks (``cfg.sends_resized``). ``spill_dir``: keep thumbnails, and up to
    ``spill_bytes`` of counter inputs, in scratch files there (``SpillStore``) instead of
    memory. ``canvas``: a quicklook canvas to fill from the tiles as they are read."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
    n = len(grid)
    tiles = LazyTiles(grid, pixels)
    resize = input_size if cfg.sends_resized else None
    sizes = {q: np.zeros(n, np.int64) for q in cfg.all_qualities}
    spill = spill_dir is not None
    thumbs: list[np.ndarray] | SpillStore = SpillStore(n, spill_dir) if spill and cfg.dedup \
        else []
    # The counter input before padding: the tile resized to the input when larger (as
    # ``preprocess.prepare_tile`` would), else the tile itself, resized when counted. Kept
    # when reading it again would cost something: a resize, or a read from a windowed
    # source (a decoded array's tile at the input size is only a slice of it).
    input_tile = input_size if input_size and input_size < tile_size else tile_size
    keep = spill and input_size and spill_bytes > 0 and (
        input_tile != tile_size or not isinstance(pixels, np.ndarray))
    inputs = SpillStore(n, spill_dir, spill_bytes) if keep else None
    qualities = cfg.all_qualities
    descriptors: np.ndarray | None = None  # (n, d), filled row by row (no array per tile)
    for i in range(n):
        tile = tiles[i]
        if canvas is not None:
            t = grid.tile(i)
            canvas.add(t.y0, t.x0, tile)
        sent = downlink_pixels(tile, tile_size, resize)
        if inputs is not None:
            inputs.put(i, sent if resize == input_size else
                       downlink_pixels(tile, tile_size, input_size))
        for q, size in zip(qualities, encoded_sizes(sent, qualities), strict=True):
            sizes[q][i] = size
        if cfg.dedup:
            g = dedup.grey(tile)
            thumb = dedup.thumbnail(tile, tile_size, g)
            if spill:
                thumbs.put(i, thumb)
            else:
                thumbs.append(thumb)
            d = dedup.descriptor(tile, g)
            if descriptors is None:
                descriptors = np.empty((n, len(d)))
            descriptors[i] = d
    if cfg.dedup and n:
        plan = dedup.plan_contexts(descriptors, cfg.k_max, cfg.seed)
    else:
        plan = dedup.ContextPlan(np.zeros(n, np.int64), np.arange(n), 1)
    return PreparedTiles(grid, tiles, sizes, thumbs, plan, inputs,
                         input_tile if inputs is not None else None)

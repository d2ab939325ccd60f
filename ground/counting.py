"""The ground's counting step: the deep counter on every committed tile without a count.

``count_pending`` counts a batch of committed tiles that have no ground count yet (the counting
worker calls it in a loop): tiles sent resized to the counter input go through the network
together as one batch, a native tile is cut at the counter's natural size (``ground_count``,
which the offline simulator calls too, so both count a received tile the same way); each
resized tile's count is corrected by its JPEG quality's bias when an error model is given.
"""

from __future__ import annotations

import threading

import numpy as np

from ground.store import Store
from shared.counting import run_tiles
from shared.pipeline.codec import decode_tile
from shared.pipeline.error_model import ErrorModel


def ground_count(ground, received: np.ndarray, gsd: float | None, resized: bool) -> float:
    """The ground counter's count of a received tile: one input as sent when the onboard
    side resized it to the counter's input, else cut at the counter's natural tile size."""
    if resized:
        counts, _, _ = run_tiles(ground.run_batch, [received], ground.input_size, 1.0, 1)
        return float(counts[0])
    return ground.count_tiles(received, gsd).total


def count_pending(store: Store, counter, error_model: ErrorModel | None = None,
                  batch: int = 16) -> int:
    """Count up to ``batch`` uncounted tiles; returns how many were counted. Tiles sent
    resized to the counter input go through the network together, as one batch."""
    tiles = store.uncounted(batch)
    counts: dict[tuple[str, int], float] = {}
    resized, images = [], []
    for t in tiles:
        try:
            img = decode_tile(t.data)
        except ValueError:
            counts[(t.scene_id, t.tile_index)] = float("nan")  # kept, reported undecodable
            continue
        if t.resized:
            resized.append(t)
            images.append(img)
        else:
            counts[(t.scene_id, t.tile_index)] = ground_count(counter, img,
                                                              t.sent_gsd_m or None, False)
    if images:
        batch_counts, _, _ = run_tiles(counter.run_batch, images, counter.input_size, 1.0,
                                       len(images))
        for t, n in zip(resized, batch_counts, strict=True):
            scale = error_model.scale(t.quality) if error_model is not None else 1.0
            counts[(t.scene_id, t.tile_index)] = float(n) * scale
    if counts:
        store.set_counts([(s, i, c) for (s, i), c in counts.items()])
    return len(tiles)


class CountingWorker(threading.Thread):
    """Counts received tiles in the background until stopped."""

    def __init__(self, store: Store, counter, error_model: ErrorModel | None = None,
                 batch: int = 16, idle_s: float = 0.2):
        super().__init__(daemon=True, name="ground-counter")
        self.store, self.counter, self.error_model = store, counter, error_model
        self.batch, self.idle_s = batch, idle_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            if count_pending(self.store, self.counter, self.error_model, self.batch) == 0:
                self._halt.wait(self.idle_s)

    def stop(self) -> None:
        self._halt.set()

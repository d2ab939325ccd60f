"""The ground's view of each scene: counting received tiles and aggregating totals.

``count_pending`` counts committed tiles that have no ground count yet (a batch at a time:
the counting worker calls it in a loop) with the deep counter, as the simulator does: tiles
sent resized to the counter input go through the network together as one batch, a native
tile is cut at the counter's natural size; each resized tile's count is corrected by its
JPEG quality's bias when an error model is given. ``scene_report`` aggregates a scene from
its summary and ground counts with the same ``aggregate`` the simulator uses, so partial
totals are visible before the link delivers all.
"""

from __future__ import annotations

import threading

import numpy as np

from ground.store import Store
from shared.counting import run_tiles
from shared.pipeline.aggregation import aggregate
from shared.pipeline.scene import decode_tile
from shared.pipeline.simulator import ground_count
from shared.pipeline.throttling import ErrorModel
from shared.wire.convert import summary_arrays


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


def scene_report(store: Store, scene_id: str, discarded: str = "onboard",
                 uncounted: str = "context") -> dict | None:
    header = store.header(scene_id)
    if header is None:
        return None
    summary = store.summary(scene_id)
    received = store.ground_counts(scene_id)
    report = {"scene_id": scene_id, "tiles": header.grid.rows * header.grid.cols,
              "tile_size": header.grid.tile_size, "summary_received": summary is not None,
              "tiles_received": len(received),
              "tiles_counted": sum(1 for c, _ in received.values() if c is not None)}
    if summary is None:
        report.update({"total": None, "complete": False})
        return report
    action, onboard, reused, contexts = summary_arrays(summary)
    ground = {i: c for i, (c, _) in received.items() if c is not None and not np.isnan(c)}
    agg = aggregate(action, onboard, reused, ground, contexts, discarded, uncounted)
    onboard_only = float(np.nansum(onboard))  # what the satellite alone would report
    report.update({**agg.as_dict(), "onboard_total": round(onboard_only, 3),
                   "energy_j": summary.energy_j, "downlink_bytes": summary.downlink_bytes,
                   "onboard_inferences": summary.onboard_inferences,
                   "per_tile": [{"index": i, "provenance": p, "count": round(float(c), 3),
                                 "onboard": None if np.isnan(onboard[i]) else
                                 round(float(onboard[i]), 3),
                                 "ground": ground.get(i)}
                                for i, (p, c) in enumerate(zip(agg.provenance, agg.tile_counts,
                                                               strict=True))]})
    return report

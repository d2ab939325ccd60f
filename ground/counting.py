"""The ground's counting step: the deep counter on every committed tile without a count.

``count_pending`` counts a batch of committed tiles that have no ground count yet (the counting
worker calls it in a loop): tiles sent resized to the counter input go through the network
together as one batch, a native tile is cut at the counter's natural size (``ground_count``,
which the offline simulator calls too, so both count a received tile the same way); each
resized tile's count is corrected by its JPEG quality's bias when an error model is given.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from ground.store import Store
from shared.counting import run_tiles
from shared.limits import OutOfRange, check_tile_work
from shared.pipeline.codec import decode_tile
from shared.pipeline.error_model import ErrorModel

log = logging.getLogger("targetfuse.ground.counting")


def ground_count(ground, received: np.ndarray, gsd: float | None,
                 sent_input: int | None) -> float:
    """The ground counter's count of a received tile: one input when the onboard side
    resized it to its counter's input (``sent_input`` px), else cut at the ground counter's
    natural tile size."""
    return float(ground_class_counts(ground, received, gsd, sent_input).sum())


def ground_class_counts(ground, received: np.ndarray, gsd: float | None,
                        sent_input: int | None, channels: list[int] | None = None
                        ) -> np.ndarray:
    """Per requested class (default every class), the ground's count of a received tile.
    ``sent_input``: the onboard input size the tile was resized to (None: sent native); a
    ground counter whose input is larger (one that counts enlarged tiles) enlarges it."""
    if sent_input:
        per_class = run_tiles(ground.run_batch, [received], ground.input_size,
                              ground.input_size / sent_input, 1).class_counts[0]
    else:
        per_class = ground.count_tiles(received, gsd).class_totals()
    return per_class if channels is None else per_class[channels]


def scene_channels(store: Store, counter, scene_id: str, cache: dict) -> list[int] | None:
    """The ground counter's channels for the classes a scene's header names (None: every
    class, for a header naming none). A class the ground does not count is left out."""
    if scene_id not in cache:
        header = store.header(scene_id)
        names = list(header.classes) if header is not None else []
        known = list(getattr(counter.card, "classes", []))
        cache[scene_id] = [known.index(c) for c in names if c in known] if names else None
    return cache[scene_id]


def count_pending(store: Store, counter, error_model: ErrorModel | None = None,
                  batch: int = 16) -> int:
    """Count up to ``batch`` uncounted tiles; returns how many were counted."""
    return count_tiles(store, counter, store.uncounted(batch), error_model)


def count_tiles(store: Store, counter, tiles: list, error_model: ErrorModel | None = None
                ) -> int:
    """Count these stored tiles and commit their counts; returns how many. Tiles sent
    resized to the counter input go through the network together, as one batch. Each tile
    gets its total over the classes its scene asked for and the count of each of them."""
    counts: dict[tuple[str, int], tuple[float, list[float] | None]] = {}
    channels: dict[str, list[int] | None] = {}
    resized, images, scales = [], [], []
    enlargement: dict[str, float] = {}  # per scene: one header read, not one per tile
    for t in tiles:
        try:
            img = decode_tile(t.data)
        except ValueError:
            counts[(t.scene_id, t.tile_index)] = (float("nan"), None)  # kept, undecodable
            continue
        if t.resized:
            resized.append(t)
            images.append(img)
            if t.scene_id not in enlargement:
                enlargement[t.scene_id] = sent_scale(store, counter, t.scene_id)
            scales.append(enlargement[t.scene_id])
        else:
            try:  # the cost bounded before any work: a poison tile is set aside, not counted
                _check_work(counter, img, t.sent_gsd_m or None)
            except OutOfRange as exc:
                log.error("tile %s/%s quarantined: %s", t.scene_id, t.tile_index, exc)
                counts[(t.scene_id, t.tile_index)] = (float("nan"), None)
                continue
            try:
                per = ground_class_counts(counter, img, t.sent_gsd_m or None, None,
                                          scene_channels(store, counter, t.scene_id, channels))
            except Exception:  # noqa: BLE001 - this tile, not the queue behind it
                log.exception("tile %s/%s could not be counted", t.scene_id, t.tile_index)
                counts[(t.scene_id, t.tile_index)] = (float("nan"), None)
                continue
            counts[(t.scene_id, t.tile_index)] = (float(per.sum()), per.tolist())
    if images:
        try:
            class_counts = _resized_counts(counter, images, scales)
        except Exception:  # noqa: BLE001 - one odd tile must not fail the batch: one by one
            class_counts = [_one(counter, img, f) for img, f in zip(images, scales,
                                                                     strict=True)]
        for t, per_class in zip(resized, class_counts, strict=True):
            if per_class is None:
                counts[(t.scene_id, t.tile_index)] = (float("nan"), None)
                continue
            scale = error_model.scale(t.quality) if error_model is not None else 1.0
            sel = scene_channels(store, counter, t.scene_id, channels)
            per = (per_class if sel is None else per_class[sel]) * scale
            counts[(t.scene_id, t.tile_index)] = (float(per.sum()), per.tolist())
    if counts:
        store.set_counts([(s, i, c, per) for (s, i), (c, per) in counts.items()])
    return len(tiles)


def _check_work(counter, img: np.ndarray, gsd: float | None) -> None:
    card = getattr(counter, "card", None)
    if card is not None:
        check_tile_work(img.shape[1], img.shape[0], gsd, False, card.input_size,
                        card.model_gsd_m)


def sent_scale(store: Store, counter, scene_id: str) -> float:
    """How much a tile of this scene sent resized is enlarged to the ground counter's input:
    its input size over the onboard input size the scene's header states (1 without one)."""
    header = store.header(scene_id)
    sent = header.input_size if header is not None else 0
    return counter.input_size / sent if sent else 1.0


def _resized_counts(counter, images: list[np.ndarray], scales: list[float]) -> list:
    """Class counts of resized tiles, in order, one batch per enlargement."""
    out: list = [None] * len(images)
    for f in sorted(set(scales)):
        idx = [k for k, g in enumerate(scales) if g == f]
        run = run_tiles(counter.run_batch, [images[k] for k in idx], counter.input_size, f,
                        len(idx))
        for k, row in zip(idx, run.class_counts, strict=True):
            out[k] = row
    return out


def _one(counter, img: np.ndarray, scale: float) -> np.ndarray | None:
    try:
        return run_tiles(counter.run_batch, [img], counter.input_size, scale,
                         1).class_counts[0]
    except Exception:  # noqa: BLE001
        log.exception("a received tile could not be counted; it stays without a count")
        return None


class CountingWorker(threading.Thread):
    """Counts received tiles in the background until stopped."""

    def __init__(self, store: Store, counter, error_model: ErrorModel | None = None,
                 batch: int = 16, idle_s: float = 0.2):
        super().__init__(daemon=True, name="ground-counter")
        self.store, self.counter, self.error_model = store, counter, error_model
        self.batch, self.idle_s = batch, idle_s
        self._halt = threading.Event()
        self.last_pass = time.monotonic()  # the last pass that finished, counting or idle
        self.failures = 0  # passes in a row that raised

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                busy = count_pending(self.store, self.counter, self.error_model, self.batch)
                self.last_pass, self.failures = time.monotonic(), 0
            except Exception:  # noqa: BLE001 - nothing received may stop counting for good
                log.exception("counting pass failed; retrying")
                self.failures += 1
                busy = 0
            if busy == 0:
                self._halt.wait(self.idle_s)

    def state(self, stall_s: float = 120.0) -> str:
        """``counting`` while passes finish; ``failing`` when they keep raising; ``stalled``
        when none has finished for ``stall_s``; ``dead`` when the thread is gone."""
        if self.ident is not None and not self.is_alive():
            return "dead"
        if self.failures >= 3:
            return "failing"
        if time.monotonic() - self.last_pass > stall_s:
            return "stalled"
        return "counting"

    def stop(self) -> None:
        self._halt.set()

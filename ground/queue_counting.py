"""Counting workers of the ground segment: tiles from the JetStream queue, counts into the
shared store, acknowledged only after the commit.

Each pass fetches a batch of "tile ready" deliveries (``ground.tile_queue``), reads those
tiles from the store (one already counted is skipped: a redelivery after a worker died
between its commit and its acknowledgement), counts them with the same counting step as the
embedded worker (``ground.counting.count_tiles``), commits the counts (the first committed
count of a tile stands) and then acknowledges. A batch that fails is tried again tile by
tile, so only a tile that fails alone is charged a try and nak'd for redelivery; a tile
tried ``max_deliver`` times without a count is quarantined: it gets no count (NaN, as an
undecodable tile does), is logged with the reason, and its message is terminated, so one
poison tile cannot loop forever, hold back the queue or take good tiles with it. Its tries
are the more of its message's deliveries and its failed commits, which the store keeps
with the tile (``record_count_failures``): a re-announced tile is a new message, and NATS
2.9 sometimes reports a nak'd message's redelivery as its first delivery.

A sweep (``republish_lost``) re-announces tiles committed more than ``lost_after_s`` ago and
still uncounted: a station that committed a tile and then failed to publish it (NATS down)
loses no work; JetStream's duplicate window and the first-count-stands rule make a second
announcement harmless.
"""

from __future__ import annotations

import logging
import time

from ground.counting import CountingWorker, count_tiles
from ground.store import Store
from ground.tile_queue import NatsTileQueue

log = logging.getLogger("targetfuse.ground.queue")


def count_deliveries(store: Store, counter, queue: NatsTileQueue, deliveries: list,
                     error_model=None) -> int:
    """Count and commit a batch, then acknowledge it; returns tiles counted."""
    tiles = store.tiles([(d.scene_id, d.tile_index) for d in deliveries])
    try:
        counted = count_tiles(store, counter, tiles, error_model)
    except Exception as exc:  # noqa: BLE001 - these tiles, not the queue behind them
        if len(deliveries) > 1:
            # One poison tile must not charge its batch-mates a try (fetched with it every
            # time, they would be quarantined with it): each tile again, alone.
            return sum(count_deliveries(store, counter, queue, [d], error_model)
                       for d in deliveries)
        failed = store.record_count_failures([(d.scene_id, d.tile_index) for d in deliveries])
        for d in deliveries:
            # The tries so far: this message's deliveries (a worker that died mid-count
            # failed too) or the tile's failed commits, kept in the store (a re-announced
            # tile is a new message; and NATS 2.9 may report a redelivery as the first).
            tries = max(d.attempts, failed.get((d.scene_id, d.tile_index), 0))
            if tries >= queue.max_deliver:
                log.error("tile %s/%s quarantined after %d tries: %s", d.scene_id,
                          d.tile_index, tries, exc)
                store.set_counts([(d.scene_id, d.tile_index, float("nan"))])
                d.term()
            else:
                d.nak(delay_s=1.0)
        return 0
    for d in deliveries:  # after the commit: a crash before this redelivers, harmlessly
        d.ack()
    return counted


def republish_lost(store: Store, queue: NatsTileQueue, lost_after_s: float,
                   limit: int = 1000) -> int:
    keys = store.uncounted_since(time.time() - lost_after_s, limit)
    for scene_id, index in keys:
        queue.publish(scene_id, index)
    return len(keys)


class QueueCountingWorker(CountingWorker):
    """Counts tiles from the queue until stopped (``state()`` and ``stop()`` as the embedded
    worker's)."""

    def __init__(self, store: Store, counter, queue: NatsTileQueue, error_model=None,
                 batch: int = 16, lost_after_s: float = 60.0):
        super().__init__(store, counter, error_model, batch)
        self.name = "ground-queue-counter"
        self.queue, self.lost_after_s = queue, lost_after_s
        self.counted = 0

    def run(self) -> None:
        swept, recreated = 0.0, self.queue.recreated
        while not self._halt.is_set():
            try:
                if self.queue.recreated != recreated:
                    # The stream was deleted and made again: what it held is gone, so every
                    # uncounted tile is announced again now, not after lost_after_s.
                    recreated = self.queue.recreated
                    republish_lost(self.store, self.queue, 0.0, 100_000)
                    swept = time.monotonic()
                if time.monotonic() - swept > self.lost_after_s / 2:
                    republish_lost(self.store, self.queue, self.lost_after_s)
                    swept = time.monotonic()
                deliveries = self.queue.fetch(self.batch, timeout_s=1.0)
                if deliveries:
                    self.counted += count_deliveries(self.store, self.counter, self.queue,
                                                     deliveries, self.error_model)
                self.last_pass, self.failures = time.monotonic(), 0
            except Exception:  # noqa: BLE001 - the queue or the store away for a while
                log.exception("queue counting pass failed; retrying")
                self.failures += 1
                self._halt.wait(min(30.0, 0.5 * 2 ** self.failures))

"""The ground segment's counting: tiles announced on NATS JetStream by the stations, counted
by several workers into one PostgreSQL store, acknowledged after the commit; a worker that
dies mid-count, a poison tile and a lost announcement. Real PostgreSQL and NATS (each test
makes its own database and stream and removes them; skips without the servers)."""

from __future__ import annotations

import time
import uuid

import pytest

from ground.link_server import announcer, receive
from ground.queue_counting import QueueCountingWorker, count_deliveries
from ground.store import PostgresStore
from ground.tile_queue import NatsTileQueue
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


@pytest.fixture
def queue_factory(nats_url):
    stream = f"TFTEST_{uuid.uuid4().hex[:10].upper()}"
    made = []

    def make(**kw):
        q = NatsTileQueue(nats_url, stream=stream, prefix=f"{stream.lower()}.tiles", **kw)
        made.append(q)
        return q

    yield make
    if made:
        made[0].delete_stream()
    for q in made:
        q.close()


@pytest.fixture
def store(postgres_url):
    s = PostgresStore(postgres_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def counter():
    from ground.counter import GroundCounter

    return GroundCounter.shipped("aircraft", threads=1)


def commit_scene(store, scene_id, tiles, on_commit=None):
    n = len(tiles)
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=256 * n, height=256, tile_size=256, rows=1, cols=n), input_size=256)
    receive(store, link_pb2.DownlinkMessage(header=h), "sat-1")
    for i, data in enumerate(tiles):
        for c in tile_chunks(scene_id, i, 0, i, data, 90, resized=True):
            ack = receive(store, link_pb2.DownlinkMessage(chunk=c), "sat-1", on_commit)
            assert ack.status != link_pb2.Ack.REJECTED, ack.error


def fetch_some(q, batch=8, timeout_s=20.0):
    """The next deliveries, waiting for them (a loaded machine may take a while)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        got = q.fetch(batch, timeout_s=1.0)
        if got:
            return got
    return []


def wait_counted(store, n, timeout_s=60):
    deadline = time.time() + timeout_s
    while store.count_uncounted() and time.time() < deadline:
        time.sleep(0.2)
    return store.count_uncounted()


def test_an_announcement_is_delivered_once_and_again_only_when_not_acknowledged(
        queue_factory):
    q = queue_factory()
    q.publish("s", 3, "ab12")
    q.publish("s", 3, "ab12")  # the same tile through a second station: one message
    assert q.pending() == 1
    first = fetch_some(q)
    assert [(d.scene_id, d.tile_index, d.attempts) for d in first] == [("s", 3, 1)]
    first[0].nak(delay_s=0.1)
    again = fetch_some(q)
    assert [(d.tile_index, d.attempts) for d in again] == [(3, 2)]
    again[0].ack()
    assert q.fetch(8, timeout_s=0.5) == [] and q.pending() == 0


def test_an_id_taken_first_holds_back_no_announcement(store, queue_factory, jpeg_tile):
    """Issue 26, finding 9: a message published ahead under a tile's id (``scene:tile``)
    made JetStream drop the station's real announcement as a duplicate, and the tile waited
    for the sweep (149 s). The id now holds the tile's digest, which nobody without the tile
    knows; the sweep's re-announcements hold none, so they are never dropped."""
    import json

    station = queue_factory()
    body = json.dumps({"scene_id": "sat-1:taken", "tile_index": 0}).encode()
    for forged in ("sat-1:taken:0", "sat-1:taken:0:"):
        station._call(station._js.publish(station.subject, body,
                                          headers={"Nats-Msg-Id": forged}))
    commit_scene(store, "taken", [jpeg_tile(2000, seed=43)], announcer(station))
    assert station.pending() == 3, "the real announcement was dropped as a duplicate"
    station.publish("sat-1:taken", 0)
    station.publish("sat-1:taken", 0)  # the sweep's: never dropped
    assert station.pending() == 5


def test_two_workers_count_every_tile_once(store, queue_factory, counter, jpeg_tile):
    q = queue_factory()
    tiles = [jpeg_tile(3000, seed=i) for i in range(10)]
    commit_scene(store, "two", tiles, announcer(q))
    assert q.pending() == 10
    workers = [QueueCountingWorker(store, counter, queue_factory(), batch=3)
               for _ in range(2)]
    for w in workers:
        w.start()
    try:
        assert wait_counted(store, 10) == 0
        deadline = time.time() + 10
        while q.pending() and time.time() < deadline:  # the last acks
            time.sleep(0.1)
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            w.join(10)
    counts = store.ground_counts("sat-1:two")
    assert sorted(counts) == list(range(10)) and all(c is not None for c, _ in counts.values())
    assert sum(w.counted for w in workers) == 10  # each tile counted by one worker, once
    assert q.pending() == 0


def test_a_worker_that_dies_before_acknowledging_loses_nothing(store, queue_factory, counter,
                                                               jpeg_tile):
    q = queue_factory(ack_wait_s=2.0)
    commit_scene(store, "died", [jpeg_tile(2500, seed=20 + i) for i in range(4)],
                 announcer(q))
    taken = fetch_some(q, 4)  # a worker takes the batch and dies: no ack, no count
    assert len(taken) == 4
    survivor = QueueCountingWorker(store, counter, queue_factory(ack_wait_s=2.0), batch=4)
    survivor.start()
    try:
        assert wait_counted(store, 4) == 0  # redelivered after ack_wait, counted
    finally:
        survivor.stop()
        survivor.join(10)
    assert survivor.counted == 4


class _CommitsFail:
    """The real store, whose commits of real counts fail (fault injection: the database
    refuses the write); everything else passes through."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def set_counts(self, counts):
        if any(c[2] == c[2] for c in counts):  # a real count (not NaN)
            raise RuntimeError("injected: the count could not be committed")
        self._store.set_counts(counts)


def test_a_tile_whose_commit_keeps_failing_is_quarantined_not_retried_forever(
        store, queue_factory, counter, jpeg_tile):
    q = queue_factory(max_deliver=2)
    commit_scene(store, "poison", [jpeg_tile(2000, seed=30)], announcer(q))
    flaky = _CommitsFail(store)
    for _ in range(2):
        # Not the deliveries' own count: NATS 2.9 may number a nak'd message's redelivery 1.
        deliveries = fetch_some(q, 1)
        assert [(d.scene_id, d.tile_index) for d in deliveries] == [("sat-1:poison", 0)]
        assert count_deliveries(flaky, counter, q, deliveries) == 0
    (value, _), = store.ground_counts("sat-1:poison").values()
    assert value != value  # quarantined: no count, logged with the reason
    assert store.count_uncounted() == 0 and q.fetch(1, timeout_s=2) == []


class _OneTileFails(_CommitsFail):
    """Only tile 0's real counts fail to commit (the poison); the others' go through."""

    def set_counts(self, counts):
        if any(c[1] == 0 and c[2] == c[2] for c in counts):
            raise RuntimeError("injected: tile 0's count could not be committed")
        self._store.set_counts(counts)


def test_a_poison_tile_fetched_with_good_ones_charges_them_nothing(store, queue_factory,
                                                                    counter, jpeg_tile):
    """Fetched in one batch with the poison tile every time, good tiles were charged its
    failures and quarantined with it; now the failed batch is counted again tile by tile."""
    q = queue_factory(max_deliver=2)
    commit_scene(store, "mates", [jpeg_tile(2000, seed=50 + i) for i in range(3)],
                 announcer(q))
    flaky = _OneTileFails(store)
    for _ in range(2):
        deliveries = fetch_some(q, 3)
        assert 0 in [d.tile_index for d in deliveries]
        count_deliveries(flaky, counter, q, deliveries)
    counts = store.ground_counts("sat-1:mates")
    assert counts[0][0] != counts[0][0]  # the poison tile quarantined
    assert all(counts[i][0] == counts[i][0] for i in (1, 2)), counts  # the others counted
    assert store.count_uncounted() == 0 and q.fetch(3, timeout_s=2) == []


def test_a_re_announced_tile_keeps_its_failed_tries(store, queue_factory, counter, jpeg_tile):
    q = queue_factory(max_deliver=2)
    commit_scene(store, "again", [jpeg_tile(2000, seed=31)], announcer(q))
    assert store.record_count_failures([("sat-1:again", 0), ("sat-1:again", 9)]) == {
        ("sat-1:again", 0): 1}
    deliveries = fetch_some(q, 1)  # a new message for a tile that failed once before
    assert [d.attempts for d in deliveries] == [1]
    assert count_deliveries(_CommitsFail(store), counter, q, deliveries) == 0
    (value, _), = store.ground_counts("sat-1:again").values()
    assert value != value and q.fetch(1, timeout_s=2) == []  # its second try: quarantined


def test_a_tile_whose_announcement_was_lost_is_swept_up(store, queue_factory, counter,
                                                        jpeg_tile):
    commit_scene(store, "lost", [jpeg_tile(2000, seed=40 + i) for i in range(3)])  # no queue
    q = queue_factory()
    assert q.pending() == 0
    time.sleep(1.0)
    worker = QueueCountingWorker(store, counter, q, batch=3, lost_after_s=0.5)
    worker.start()
    try:
        assert wait_counted(store, 3) == 0
    finally:
        worker.stop()
        worker.join(10)


def test_a_workers_heartbeat_says_whether_its_passes_finish(tmp_path):
    import os

    from ground.segment import alive

    beat = tmp_path / "alive"
    assert not alive(heartbeat=beat)  # never started
    beat.touch()
    assert alive(heartbeat=beat)
    os.utime(beat, (time.time() - 600, time.time() - 600))
    assert not alive(max_age_s=120, heartbeat=beat)  # stuck for ten minutes


def test_a_deleted_stream_is_made_again_and_queue_garbage_is_dropped(store, queue_factory,
                                                                       counter, jpeg_tile):
    """Issue 26, finding 9: the stream deleted under the segment left new tiles committed
    and uncounted until the workers restarted, and garbage on the queue was taken. Whoever
    finds the stream missing makes it again (a station publishing, a worker fetching), the
    workers announce every uncounted tile again at once, and a message that is not "tile
    ready" work is dropped."""
    import json

    from ground.queue_counting import QueueCountingWorker

    station = queue_factory(ack_wait_s=5.0)
    worker = QueueCountingWorker(store, counter, queue_factory(ack_wait_s=5.0),
                                 lost_after_s=3600.0)  # no periodic sweep within the test
    worker.start()
    try:
        commit_scene(store, "before", [jpeg_tile(2000, seed=41)], announcer(station))
        assert wait_counted(store, None, 60) == 0
        station.delete_stream()
        commit_scene(store, "after", [jpeg_tile(2000, seed=42)], announcer(station))
        for body in (b"not json", json.dumps({"scene_id": "<script>", "tile_index": -1}
                                             ).encode(),
                     json.dumps({"scene_id": "after", "tile_index": 0, "x": 1}).encode()):
            station._call(station._js.publish(station.subject, body))
        t0 = time.time()
        assert wait_counted(store, None, 60) == 0, "a tile committed after the deletion waits"
        assert time.time() - t0 < 60
        deadline = time.time() + 30
        while worker.queue.dropped < 3 and time.time() < deadline:
            time.sleep(0.2)
        assert worker.queue.dropped == 3
        (value, _), = store.ground_counts("sat-1:after").values()
        assert value is not None
    finally:
        worker.stop()
        worker.join(10)

"""Onboard link pieces, and the link end to end against the real ground servicer on loopback."""

import threading

import grpc
import pytest

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.link.windows import ContactSchedule
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_token_bucket_holds_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(1000.0, burst=500.0, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        bucket.consume(250)
    # 5000 bytes at 1000 B/s, the first 500 from the initial burst.
    assert clock.t == pytest.approx(4.5, abs=1e-6)
    bucket.consume(5000)  # larger than the burst: waits for a full bucket, goes negative
    bucket.consume(100)
    assert clock.t == pytest.approx(4.5 + 0.5 + 4.6, abs=1e-6)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_contact_windows():
    s = ContactSchedule(period_s=100, duration_s=10, offset_s=5)
    assert s.is_open(5) and s.is_open(14.9) and not s.is_open(15) and s.is_open(105)
    assert s.next_open(20) == 105
    assert s.bytes_left(7, 100.0) == pytest.approx(800.0)
    e = ContactSchedule(windows=((10, 20), (50, 60)))
    assert not e.is_open(30) and e.next_open(30) == 50 and e.next_open(70) is None
    assert ContactSchedule.always().is_open(1e12)
    for bad in ({"period_s": 10, "duration_s": 20}, {"windows": ((5, 1),)},
                {"windows": ((0, 10), (5, 20))}):
        with pytest.raises(ValueError):
            ContactSchedule(**bad)


def test_the_bytes_of_the_windows_within_a_horizon():
    e = ContactSchedule(windows=((10, 20), (50, 60), (100, 110)), rates=(100.0, 10.0, 1.0))
    assert e.bytes_within(15, 0, 1e9) == pytest.approx(500.0)  # the open window alone
    assert e.bytes_within(15, 40, 1e9) == pytest.approx(600.0)  # 50 opens before 55
    assert e.bytes_within(15, 35, 1e9) == pytest.approx(500.0)  # 50 opens after 50
    assert e.bytes_within(30, 80, 1e9) == pytest.approx(110.0)  # from the next window on
    assert e.bytes_within(200, 1e6, 1e9) == 0.0  # none left
    p = ContactSchedule(period_s=100, duration_s=10)
    assert p.bytes_within(5, 250, 2.0) == pytest.approx(10 + 20 + 20)  # 100 and 200 open


def scene_messages(scene_id, tiles: dict[int, bytes]):
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=512, height=512, tile_size=256, rows=2, cols=2))
    s = link_pb2.SceneSummary(scene_id=scene_id, tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.DOWNLINKED if i in tiles
                              else link_pb2.ACCEPTED, onboard_count=1.0) for i in range(4)])
    out = [link_pb2.DownlinkMessage(header=h), link_pb2.DownlinkMessage(summary=s)]
    for i, data in tiles.items():
        out += [link_pb2.DownlinkMessage(chunk=c) for c in
                tile_chunks(scene_id, i, i // 2, i % 2, data, 90, chunk_bytes=2000)]
    return out


def test_outbox_survives_a_restart_and_resumes_from_what_the_ground_holds(jpeg_tile, tmp_path):
    box = Outbox(tmp_path / "o.db")
    box.put_scene(scene_messages("a", {0: jpeg_tile(5000, seed=1), 3: jpeg_tile(100, seed=2)}))
    assert box.stats()["parts_queued"] == 2 + 3 + 1
    box.close()
    box = Outbox(tmp_path / "o.db")
    parts = box.pending()
    assert [p.kind for p in parts] == ["header", "summary", "chunk", "chunk", "chunk", "chunk"]
    held = link_pb2.CommittedReply(scene_id="a", header=True, tiles=[0])
    assert box.reconcile(held) is None  # parts still to go: nothing concluded
    assert [p.kind for p in box.pending()] == ["summary", "chunk"]
    assert box.confirmation("a") is None


def start_ground(db, port=0):
    settings = GroundSettings(auth=False, grpc_host="127.0.0.1", grpc_port=port, db_path=db,
                              link_tls=False)  # TLS: test_link_tls*
    store = SQLiteStore(db)
    server, port = create_server(settings, store)
    server.start()
    return server, store, port


def test_drains_to_the_ground_and_a_ground_restart_loses_nothing(jpeg_tile, tmp_path):
    tiles = {i: jpeg_tile(7000, seed=3) for i in range(4)}
    server, store, port = start_ground(tmp_path / "g.db")
    box = Outbox(tmp_path / "o.db")
    box.put_scene(scene_messages("s", tiles))
    client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(10e6), batch=5, deadline_s=10)
    assert client.drain_once() == 5  # header, summary, 3 chunks (tile 0 and half of 1)
    server.stop(None).wait()
    store.close()
    with pytest.raises(grpc.RpcError):
        client.drain_once()  # the ground is down: nothing is marked sent
    assert box.stats()["parts_queued"] == len(scene_messages("s", tiles)) - 5
    server, store, port2 = start_ground(tmp_path / "g.db", port)
    try:
        while client.drain_once():
            pass
        held = store.committed("s")
        assert held.header and held.summary and list(held.tiles) == [0, 1, 2, 3]
        got = {t.tile_index: t.data for t in store.uncounted(10)}
        assert got == tiles  # every tile once, intact
        assert box.stats()["parts_queued"] == 0
        assert box.confirmation("s") == ("confirmed", None)
    finally:
        server.stop(None)
        store.close()


def test_a_ground_that_lost_its_store_gets_the_whole_scene_again(jpeg_tile, tmp_path):
    """The ground's store is lost after part of a scene was acknowledged: the scene is not
    reported delivered, and the parts the ground no longer holds go again."""
    tiles = {i: jpeg_tile(7000, seed=5) for i in range(4)}
    server, store, port = start_ground(tmp_path / "g.db")
    box = Outbox(tmp_path / "o.db")
    box.put_scene(scene_messages("lost", tiles))
    client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(10e6), batch=5, deadline_s=10)
    assert client.drain_once() == 5
    server.stop(None).wait()
    store.close()
    for f in tmp_path.glob("g.db*"):  # the ground's disk is gone
        f.unlink()
    server, store, _ = start_ground(tmp_path / "g.db", port)
    try:
        for _ in range(20):
            client.drain_once()
            if box.confirmation("lost"):
                break
        assert box.confirmation("lost") == ("confirmed", None)
        held = store.committed("lost")
        assert held.header and held.summary and list(held.tiles) == [0, 1, 2, 3]
        assert {t.tile_index: t.data for t in store.uncounted(10)} == tiles
        assert box.stats()["parts_refused"] == 0
        # confirmed: the ground holds it durably, so the outbox keeps sizes, not bytes
        assert box.db.query("SELECT SUM(LENGTH(payload)) FROM outbox")[0][0] == 0
    finally:
        server.stop(None)
        store.close()


def test_a_scene_the_ground_keeps_refusing_is_refused_with_its_reason(jpeg_tile, tmp_path):
    """A part the ground refuses every time (a count no tile can hold): the scene is given
    up after MAX_SENDS with the ground's reason, and nothing of that part was stored."""
    server, store, port = start_ground(tmp_path / "g.db")
    msgs = scene_messages("taken", {1: jpeg_tile(3000, seed=6)})
    msgs[1].summary.tiles[0].onboard_count = float("inf")
    box = Outbox(tmp_path / "o.db")
    box.put_scene(msgs)
    client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(10e6), deadline_s=10)
    try:
        for _ in range(10):
            client.drain_once()
        state, error = box.confirmation("taken")
        assert state == "refused" and "onboard_count must be finite" in error, error
        assert box.stats()["parts_queued"] == 0
        assert store.summary("taken") is None
    finally:
        server.stop(None)
        store.close()


def test_repeated_store_losses_resend_the_header_with_its_tiles(jpeg_tile, tmp_path):
    """Issue 26, finding 8: three kill-delete-restart cycles of the ground in one downlink
    left the scene refused ("tile for a scene whose header has not arrived"). A part the
    ground took and then lost is not refused: it goes again, the header first."""
    tiles = {i: jpeg_tile(7000, seed=20 + i) for i in range(4)}
    server, store, port = start_ground(tmp_path / "g.db")
    box = Outbox(tmp_path / "o.db")
    box.put_scene(scene_messages("again", tiles))
    client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(10e6), batch=4, deadline_s=10)
    try:
        for _ in range(3):  # three losses, each after the whole scene went down
            for _ in range(10):
                client.drain_once()
                if box.stats()["parts_queued"] == 0:
                    break
            server.stop(None).wait()
            store.close()
            for f in tmp_path.glob("g.db*"):
                f.unlink()
            server, store, _ = start_ground(tmp_path / "g.db", port)
        for _ in range(20):
            client.drain_once()
            if box.confirmation("again"):
                break
        assert box.confirmation("again") == ("confirmed", None), box.confirmation("again")
        held = store.committed("again")
        assert held.header and held.summary and list(held.tiles) == [0, 1, 2, 3]
    finally:
        server.stop(None)
        store.close()


def test_nothing_goes_while_the_window_is_closed(jpeg_tile, tmp_path):
    server, store, port = start_ground(tmp_path / "g.db")
    try:
        box = Outbox(tmp_path / "o.db")
        box.put_scene(scene_messages("w", {1: jpeg_tile(3000, seed=4)}))
        closed = ContactSchedule(windows=((1e12, 1e12 + 10),))
        client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(1e6), closed)
        assert client.drain_once() == 0
        stop = threading.Event()
        t = threading.Thread(target=client.run, args=(stop, 0.05))
        t.start()
        stop.wait(0.3)
        stop.set()
        t.join(5)
        assert not store.has_scene("w")
    finally:
        server.stop(None)
        store.close()

"""The ground end of the link over real gRPC on loopback (port chosen at run time)."""


import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ground.link_server import SERVICE_NAME, create_server, receive
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.chunks import tile_chunks

Ack = link_pb2.Ack


def header(scene_id="s1", rows=2, cols=2):
    return link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=cols * 256, height=rows * 256, tile_size=256, rows=rows, cols=cols))


def summary(scene_id="s1", n=4):
    return link_pb2.SceneSummary(scene_id=scene_id, tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.ACCEPTED, onboard_count=1.0)
        for i in range(n)])


def messages(tiles: dict[int, bytes], chunk_bytes=1000):
    out = [link_pb2.DownlinkMessage(header=header()), link_pb2.DownlinkMessage(summary=summary())]
    for i, data in tiles.items():
        out += [link_pb2.DownlinkMessage(chunk=c)
                for c in tile_chunks("s1", i, i // 2, i % 2, data, 75, chunk_bytes=chunk_bytes)]
    for k, m in enumerate(out):
        m.seq = k
    return out


@pytest.fixture
def server(tmp_path):
    settings = GroundSettings(auth=False, link_tls=False,  # TLS: test_link_tls*
                              grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db")
    store = SQLiteStore(settings.db_path)
    srv, port = create_server(settings, store)
    srv.start()
    yield settings, store, port, srv
    srv.stop(None)
    store.close()


def test_stream_commits_each_part_once_and_answers_resume(jpeg_tile, server):
    settings, store, port, _ = server
    tiles = {1: jpeg_tile(2500, seed=1), 3: jpeg_tile(900, seed=2)}
    msgs = messages(tiles)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = link_pb2_grpc.DownlinkStub(ch)
        acks = list(stub.Send(iter(msgs + msgs[2:4])))  # the first tile's chunks resent
        assert [a.seq for a in acks] == [m.seq for m in msgs + msgs[2:4]]
        assert [a.status for a in acks[:2]] == [Ack.COMMITTED, Ack.COMMITTED]
        assert [a.status for a in acks[2:5]] == [Ack.PARTIAL, Ack.PARTIAL, Ack.COMMITTED]
        assert acks[-1].status == Ack.COMMITTED  # resend of a committed tile: acknowledged
        reply = stub.Committed(link_pb2.CommittedRequest(scene_id="s1"))
        assert reply.header and reply.summary and list(reply.tiles) == [1, 3]
        health = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert {t.tile_index: t.data for t in store.uncounted(10)} == tiles


def test_bad_parts_are_rejected_and_nothing_is_kept(jpeg_tile, tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    orphan = link_pb2.DownlinkMessage(summary=summary("nope"))
    assert receive(store, orphan).status == Ack.REJECTED
    assert receive(store, link_pb2.DownlinkMessage(header=header())).status == Ack.COMMITTED
    short = link_pb2.DownlinkMessage(summary=summary(n=3))
    assert "all 4 tiles" in receive(store, short).error
    data = jpeg_tile(2000, seed=3)
    c0, c1 = tile_chunks("s1", 0, 0, 0, data, 90, chunk_bytes=1000)
    c1.data = bytes(1000)  # corrupted in transit
    assert receive(store, link_pb2.DownlinkMessage(chunk=c0)).status == Ack.PARTIAL
    ack = receive(store, link_pb2.DownlinkMessage(chunk=c1))
    assert ack.status == Ack.REJECTED and "sha256" in ack.error
    assert not store.is_committed("s1", 0)
    outside = tile_chunks("s1", 9, 0, 0, data, 90)[0]
    assert "outside" in receive(store, link_pb2.DownlinkMessage(chunk=outside)).error


def test_committed_parts_survive_a_restart(jpeg_tile, tmp_path):
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    for m in messages({2: jpeg_tile(1500, seed=4)}):
        receive(store, m)
    store.close()
    again = SQLiteStore(path)
    reply = again.committed("s1")
    assert reply.header and reply.summary and list(reply.tiles) == [2]
    # A chunk stored before the restart still completes its tile after it.
    c0, c1 = tile_chunks("s1", 0, 0, 0, jpeg_tile(1500, seed=5), 90, chunk_bytes=1000)
    receive(again, link_pb2.DownlinkMessage(chunk=c0))
    again.close()
    third = SQLiteStore(path)
    assert receive(third, link_pb2.DownlinkMessage(chunk=c1)).status == Ack.COMMITTED
    assert list(third.committed("s1").tiles) == [0, 2]


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError):
        GroundSettings(grpc_port=70000)
    with pytest.raises(ValueError):
        GroundSettings(threads=0)


def test_class_counts_must_match_the_headers_classes(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    h = header("c1")
    h.classes.extend(["ship", "vehicle"])
    assert receive(store, link_pb2.DownlinkMessage(header=h)).status == Ack.COMMITTED
    s = summary("c1")
    s.tiles[2].class_counts.extend([1.0, 2.0, 3.0])
    ack = receive(store, link_pb2.DownlinkMessage(summary=s))
    assert ack.status == Ack.REJECTED and "tile 2" in ack.error
    assert store.summary("c1") is None
    for t in s.tiles:
        del t.class_counts[:]
        t.class_counts.extend([0.25, 0.75])
    assert receive(store, link_pb2.DownlinkMessage(summary=s)).status == Ack.COMMITTED
    twice = header("c2")
    twice.classes.extend(["ship", "ship"])
    assert receive(store, link_pb2.DownlinkMessage(header=twice)).status == Ack.REJECTED


@pytest.mark.parametrize("scene_id", ["<img src=x onerror=alert(1)>", "okid\n", "", "a" * 129,
                                      "../etc"])
def test_a_header_with_a_scene_id_no_service_would_accept_is_rejected(tmp_path, scene_id):
    store = SQLiteStore(tmp_path / "g.db")
    ack = receive(store, link_pb2.DownlinkMessage(header=header(scene_id)))
    assert ack.status == Ack.REJECTED and "scene id" in ack.error
    assert store.header(scene_id) is None


def test_a_grid_too_large_to_ever_complete_is_rejected(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    ack = receive(store, link_pb2.DownlinkMessage(header=header(rows=1000, cols=1000)))
    assert ack.status == Ack.REJECTED and store.header("s1") is None


def test_a_summary_with_an_unknown_decision_is_rejected(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    assert receive(store, link_pb2.DownlinkMessage(header=header())).status == Ack.COMMITTED
    bad = summary()
    bad.tiles[2].decision = link_pb2.DECISION_UNSPECIFIED
    ack = receive(store, link_pb2.DownlinkMessage(summary=bad))
    assert ack.status == Ack.REJECTED and "tile 2: unknown decision" in ack.error
    assert receive(store, link_pb2.DownlinkMessage(summary=summary())).status == Ack.COMMITTED


def _tile(data: bytes) -> link_pb2.DownlinkMessage:
    return link_pb2.DownlinkMessage(chunk=tile_chunks("s1", 0, 0, 0, data, 90)[0])


def test_tiles_that_are_not_a_sane_jpeg_are_rejected_and_not_committed(tmp_path, jpeg_tile):
    import struct

    store = SQLiteStore(tmp_path / "g.db")
    receive(store, link_pb2.DownlinkMessage(header=header()))
    # A tiny JPEG whose frame header declares 60000 x 60000 px (a decompression bomb).
    good = jpeg_tile(500)
    sof = good.index(b"\xff\xc0")
    bomb = good[:sof + 5] + struct.pack(">HH", 60000, 60000) + good[sof + 9:]
    for data, why in ((b"", "no bytes"), (bomb, "60000 x 60000"),
                      (b"\xff\xd8" + bytes(300) + b"\xff\xd9", "frame size"),
                      (bytes(range(256)) * 4, "not a JPEG"), (good[:-50], "truncated")):
        ack = receive(store, _tile(data))
        assert ack.status == Ack.REJECTED and why in ack.error, (why, ack.error)
        assert not store.is_committed("s1", 0)
    assert receive(store, _tile(good)).status == Ack.COMMITTED


def test_fill_bytes_before_a_marker_cannot_hide_the_frame_size(jpeg_tile):
    import numpy as np

    from shared.pipeline.codec import encode_tile, tile_size_of

    big = encode_tile(np.zeros((5000, 64, 3), np.uint8), 50)
    padded = big[:2] + b"\xff\xff\xff" + big[2:]  # fill bytes, which decoders skip
    with pytest.raises(ValueError, match="5000"):
        tile_size_of(big[:2] + big[2:])
    with pytest.raises(ValueError, match="64 x 5000"):
        tile_size_of(padded[:2] + padded[2:])

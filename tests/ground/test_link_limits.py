"""Issue 26 on a running ground (real gRPC server, real counter, real SQLite store): numbers
no scene has are REJECTED at the link and no route answers 5xx after them (finding 3); a tile
whose counting would cost thousands of inputs is refused before it is stored, and one already
stored is set aside without the work (finding 4); one key's idle streams cannot starve
another satellite, and health says when the link end is full (finding 6); a store removed
under the running ground stops its acknowledgements (finding 7)."""

from __future__ import annotations

import hashlib
import threading
import time

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ground.app import create_app
from ground.settings import GroundSettings
from shared.api_keys import Credentials
from shared.imageio import encode
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.tls import channel_credentials

A, B = "a" * 32, "b" * 32


@pytest.fixture(scope="module")
def counter():
    from ground.counter import GroundCounter

    return GroundCounter.shipped("aircraft", threads=1)


@pytest.fixture
def ground(tmp_path, counter):
    creds = Credentials.make(tmp_path / "keys")
    (tmp_path / "keys" / "link-keys").write_text(f"sat-a {A}\nsat-b {B}\n")
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="aircraft", grpc_workers=4, link_idle_s=6.0,
                              **creds.ground())
    with TestClient(create_app(settings, counter)) as client:
        client.headers["Authorization"] = f"Bearer {creds.rest_key}"
        channel = grpc.secure_channel(f"127.0.0.1:{client.app.state.grpc_port}",
                                      channel_credentials(creds.tls.ca))
        yield client, channel, settings
        channel.close()


def header(scene_id, gsd=0.5, gt=None, crs="EPSG:32631", cols=2):
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=128 * cols, height=128, tile_size=128, rows=1, cols=cols), gsd_m=gsd,
        input_size=128, classes=["aircraft"])
    if gt is not None:
        h.footprint.CopyFrom(link_pb2.Footprint(geotransform=gt, crs=crs))
    return link_pb2.DownlinkMessage(header=h)


def summary(scene_id, counts, class_counts=None):
    tiles = []
    for i, c in enumerate(counts):
        t = link_pb2.TileDecision(index=i, decision=link_pb2.ACCEPTED, onboard_count=c,
                                  confidence=0.9)
        if class_counts is not None:
            t.class_counts.extend([class_counts[i]])
        tiles.append(t)
    return link_pb2.DownlinkMessage(summary=link_pb2.SceneSummary(scene_id=scene_id,
                                                                  tiles=tiles))


def chunk(scene_id, data, sent_gsd, resized, index=0):
    return link_pb2.DownlinkMessage(chunk=link_pb2.TileChunk(
        scene_id=scene_id, tile_index=index, row=0, col=index, codec=link_pb2.JPEG,
        quality=90, sha256=hashlib.sha256(data).digest(), total_size=len(data), offset=0,
        data=data, sent_gsd_m=sent_gsd, resized=resized, decision=link_pb2.DOWNLINKED))


def send(channel, key, *msgs, timeout=20):
    for seq, m in enumerate(msgs, 1):
        m.seq = seq
    return list(link_pb2_grpc.DownlinkStub(channel).Send(
        iter(msgs), timeout=timeout, metadata=(("authorization", f"Bearer {key}"),)))


GOOD_GT = [500000.0, 0.5, 0.0, 4000000.0, 0.0, -0.5]
BAD_PARTS = [
    ("onboard_count inf", [header("n1"), summary("n1", [float("inf"), 1.0])]),
    ("1e308 on two tiles", [header("n2"), summary("n2", [1e308, 1e308])]),
    ("class_counts inf", [header("n3"), summary("n3", [1.0, 1.0], [float("inf"), 1.0])]),
    ("a NaN count", [header("n4"), summary("n4", [float("nan"), 1.0])]),
    ("a count no tile holds", [header("n5"), summary("n5", [5e6, 1.0])]),
    ("a GSD of 1e-9", [header("n6", gsd=1e-9)]),
    ("a GSD of 1e6", [header("n7", gsd=1e6)]),
    ("EPSG:999999", [header("n8", gt=GOOD_GT, crs="EPSG:999999")]),
    ("EPSG:0", [header("n9", gt=GOOD_GT, crs="EPSG:0")]),
    ("a 1e300 geotransform", [header("n10", gt=[1e300, 0.5, 0, 1e300, 0, -0.5])]),
    ("a singular geotransform", [header("n11", gt=[0, 0, 0, 0, 0, 0])]),
]


def test_numbers_no_scene_has_are_rejected_and_no_route_breaks(ground):
    client, channel, _ = ground
    for what, msgs in BAD_PARTS:
        acks = send(channel, A, *msgs)
        assert acks[-1].status == link_pb2.Ack.REJECTED and acks[-1].error, (what, acks)
    send(channel, A, header("fine", gt=GOOD_GT), summary("fine", [1.0, 2.0], [1.0, 2.0]))
    listing = client.get("/v1/scenes")
    assert listing.status_code == 200, listing.text
    for s in listing.json()["scenes"]:
        for route in ("", "/stac", "/tiles.geojson"):
            r = client.get(f"/v1/scenes/{s['key']}{route}")
            assert r.status_code < 500, (s["key"], route, r.text)
    assert {s["scene_id"] for s in listing.json()["scenes"]} <= \
        {"fine", *(f"n{k}" for k in range(1, 6))}  # headers alone of the bad summaries


def test_a_tile_that_would_cost_thousands_of_inputs_is_refused_before_it_is_stored(ground):
    """A native 128 px tile at sent_gsd_m = 64 becomes a thousand counter inputs (16,384 for
    the default pair): refused at the
    link, so it never reaches a worker; the ground goes on counting the next tile."""
    client, channel, _ = ground
    pixels = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    data = encode(pixels, ".jpg")
    t0 = time.time()
    acks = send(channel, A, header("poison"), summary("poison", [1.0, 1.0]),
                chunk("poison", data, 64.0, False), chunk("poison", data, 0.5, True, 1))
    assert acks[2].status == link_pb2.Ack.REJECTED and "counter inputs" in acks[2].error
    assert acks[3].status == link_pb2.Ack.COMMITTED
    deadline = time.time() + 60
    while client.get("/v1/scenes/poison").json()["tiles_counted"] < 1:
        assert time.time() < deadline, "the next tile was not counted"
        time.sleep(0.2)
    assert time.time() - t0 < 60
    assert client.get("/readyz").status_code == 200


def test_a_stored_poison_tile_is_set_aside_without_the_work(tmp_path, counter):
    """One already in a store (written before the bound, or by another station): counting
    sets it aside (no count) at once rather than running a thousand inputs."""
    from ground.counting import count_tiles
    from ground.store import SQLiteStore
    from shared.wire.chunks import tile_chunks

    store = SQLiteStore(tmp_path / "s.db")
    store.put_header(header("old").header)
    data = encode(np.zeros((128, 128, 3), np.uint8), ".jpg")
    (c,) = tile_chunks("old", 0, 0, 0, data, 90, sent_gsd_m=64.0, resized=False)
    store.commit_tile(c, data)
    t0 = time.time()
    assert count_tiles(store, counter, store.uncounted(4)) == 1
    assert time.time() - t0 < 10
    (value, _), = store.ground_counts("old").values()
    assert store.count_uncounted() == 0 and (value is None or np.isnan(value))  # no count
    store.close()


def _idle_stream(channel, key, stop):
    def parts():
        stop.wait(30)
        return
        yield  # pragma: no cover
    return link_pb2_grpc.DownlinkStub(channel).Send(
        parts(), timeout=30, metadata=(("authorization", f"Bearer {key}"),))


def test_one_keys_idle_streams_cannot_starve_another_satellite(ground):
    client, channel, settings = ground
    stop = threading.Event()
    calls = [_idle_stream(channel, A, stop) for _ in range(8)]
    try:
        deadline = time.time() + 10
        while sum(c.done() for c in calls) < 6 and time.time() < deadline:
            time.sleep(0.1)
        refused = sum(c.done() and c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                      for c in calls)
        assert refused >= 6  # at most link_streams_per_sender (2) held by one key
        # Two streams take this ground's whole capacity (grpc_workers 4 - 2): health and
        # readiness say it is full ...
        probe = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="targetfuse.v1.Downlink"), timeout=5)
        assert probe.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert client.get("/readyz").status_code == 503
        # ... and the idle ones are cancelled: satellite B gets through within seconds.
        deadline = time.time() + 15
        while True:
            try:
                acks = send(channel, B, header("b-scene"), timeout=5)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                assert time.time() < deadline, "satellite B was starved"
                time.sleep(0.5)
        assert acks[0].status == link_pb2.Ack.COMMITTED
        assert client.get("/healthz").json()["link"]["idle_streams_cancelled"] >= 2
    finally:
        stop.set()
        for call in calls:
            call.cancel()


def test_a_store_removed_under_the_running_ground_stops_its_acknowledgements(ground):
    client, channel, settings = ground
    assert send(channel, A, header("doomed"))[0].status == link_pb2.Ack.COMMITTED
    for f in settings.db_path.parent.glob(settings.db_path.name + "*"):
        f.unlink()
    with pytest.raises(grpc.RpcError) as err:
        send(channel, A, summary("doomed", [1.0, 1.0]))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "removed" in \
        err.value.details()
    with pytest.raises(grpc.RpcError):
        link_pb2_grpc.DownlinkStub(channel).Committed(
            link_pb2.CommittedRequest(scene_id="doomed"), timeout=5,
            metadata=(("authorization", f"Bearer {A}"),))
    assert client.get("/healthz").status_code == 503
    assert client.get("/readyz").status_code == 503

"""A fuzzing pass of the wire (issue 26): hypothesis makes every message type of
``proto/targetfuse/v1/link.proto`` with extreme numbers (NaN, infinities, 1e308, subnormals,
the integer types' ends) and sends them to a live link end (a running ground: real gRPC
server, real counter, real SQLite store, authentication on). Each one gets an
acknowledgement, never an RPC failure; afterwards no REST route of any scene answers a 5xx,
and the ground still counts a good tile."""

from __future__ import annotations

import hashlib
import time

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ground.app import create_app
from ground.settings import GroundSettings
from shared.api_keys import Credentials
from shared.imageio import encode
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.tls import channel_credentials

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXTREME = [0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, 1.7976931348623157e308,
           float("inf"), float("-inf"), float("nan"), 1e-9, 2.68e-06, 64.0, 1e6]
doubles = st.one_of(st.sampled_from(EXTREME), st.floats(allow_nan=True,
                                                        allow_infinity=True))
u32 = st.one_of(st.sampled_from([0, 1, 2, 255, 40_000, 65_535, 2**31, 2**32 - 1]),
                st.integers(0, 2**32 - 1))
u64 = st.one_of(st.sampled_from([0, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))
ids = st.one_of(st.sampled_from(["fz", "fz-1", "", "<b>x</b>", "a" * 200, "x:y"]),
                st.from_regex(r"fz[a-z0-9]{0,6}", fullmatch=True))
texts = st.one_of(st.sampled_from(["", "EPSG:4326", "EPSG:32631", "EPSG:0",
                                   "EPSG:999999", "local", "\x00", "é" * 300]),
                  st.text(max_size=40))
decisions = st.sampled_from(list(link_pb2.Decision.values()) + [7, 99])


@st.composite
def headers(draw):
    h = link_pb2.SceneHeader(
        scene_id=draw(ids), grid=link_pb2.TileGrid(
            width=draw(u32), height=draw(u32), tile_size=draw(u32), rows=draw(u32),
            cols=draw(u32)),
        capture_time=draw(texts), onboard_model=draw(texts), ground_model=draw(texts),
        input_size=draw(u32), policy=draw(texts),
        classes=draw(st.lists(texts, max_size=4)), gsd_estimated=draw(st.booleans()))
    if draw(st.booleans()):
        h.gsd_m = draw(doubles)
    if draw(st.booleans()):
        h.footprint.CopyFrom(link_pb2.Footprint(
            geotransform=draw(st.lists(doubles, min_size=0, max_size=7)), crs=draw(texts)))
    return h


@st.composite
def small_header(draw, scene_id):
    """A sound header for ``scene_id`` (so summaries and chunks reach their checks)."""
    cols = draw(st.integers(1, 3))
    return link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=128 * cols, height=128, tile_size=128, rows=1, cols=cols), gsd_m=0.5,
        input_size=128, classes=["aircraft"])


@st.composite
def tile_decisions(draw, index):
    t = link_pb2.TileDecision(index=index, decision=draw(decisions),
                              reused_from=draw(st.sampled_from(["", "tile:0", "scene:x",
                                                                "<i>", "tile:-1"])),
                              quality=draw(u32),
                              class_counts=draw(st.lists(doubles, max_size=2)))
    for name in ("onboard_count", "confidence"):
        if draw(st.booleans()):
            setattr(t, name, draw(doubles))
    if draw(st.booleans()):
        t.context = draw(u32)
    return t


@st.composite
def summaries(draw, scene_id, n):
    tiles = [draw(tile_decisions(i)) for i in range(n)]
    if draw(st.booleans()):
        tiles = draw(st.permutations(tiles))
    return link_pb2.SceneSummary(scene_id=scene_id, tiles=tiles, energy_j=draw(doubles),
                                 downlink_bytes=draw(u64), onboard_inferences=draw(u32))


JPEG = encode(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8),
              ".jpg")


@st.composite
def chunks(draw, scene_id):
    data = draw(st.sampled_from([JPEG, b"", b"\xff\xd8\xff\xd9", JPEG[:100]]))
    c = link_pb2.TileChunk(
        scene_id=scene_id, tile_index=draw(st.one_of(st.integers(0, 3), u32)),
        row=draw(u32), col=draw(u32), codec=draw(st.sampled_from([0, 1, 2, 9])),
        quality=draw(u32), sha256=draw(st.sampled_from([hashlib.sha256(data).digest(),
                                                        b"", b"x" * 32])),
        total_size=draw(st.one_of(st.just(len(data)), u32)), offset=draw(u32) if
        draw(st.booleans()) else 0, data=data, sent_gsd_m=draw(doubles),
        resized=draw(st.booleans()), decision=draw(decisions))
    for name in ("onboard_count", "confidence"):
        if draw(st.booleans()):
            setattr(c, name, draw(doubles))
    return c


@st.composite
def exchanges(draw):
    """A stream's messages: any header alone, or a sound header then a fuzzed summary or
    chunk (or both), or an empty message."""
    kind = draw(st.sampled_from(["header", "summary", "chunk", "both", "empty"]))
    if kind == "header":
        return [link_pb2.DownlinkMessage(header=draw(headers()))]
    if kind == "empty":
        return [link_pb2.DownlinkMessage()]
    sid = draw(st.from_regex(r"fz[a-z0-9]{1,6}", fullmatch=True))
    h = draw(small_header(sid))
    out = [link_pb2.DownlinkMessage(header=h)]
    n = h.grid.cols
    if kind in ("summary", "both"):
        out.append(link_pb2.DownlinkMessage(summary=draw(summaries(sid, n))))
    if kind in ("chunk", "both"):
        out.append(link_pb2.DownlinkMessage(chunk=draw(chunks(sid))))
    return out


@pytest.fixture(scope="module")
def link_end(tmp_path_factory):
    from ground.counter import GroundCounter

    folder = tmp_path_factory.mktemp("fuzz")
    creds = Credentials.make(folder / "keys")
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=folder / "g.db",
                              model="aircraft", **creds.ground())
    counter = GroundCounter.shipped("aircraft", threads=1)
    with TestClient(create_app(settings, counter)) as client:
        client.headers["Authorization"] = f"Bearer {creds.rest_key}"
        channel = grpc.secure_channel(f"127.0.0.1:{client.app.state.grpc_port}",
                                      channel_credentials(creds.tls.ca))
        key = creds.satellite_file.read_text().strip()
        yield client, link_pb2_grpc.DownlinkStub(channel), \
            (("authorization", f"Bearer {key}"),)
        channel.close()


def test_fuzzed_wire_messages_are_answered_and_break_nothing(link_end):
    client, stub, meta = link_end

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(exchanges())
    def one(msgs):
        for seq, m in enumerate(msgs, 1):
            m.seq = seq
        acks = list(stub.Send(iter(msgs), timeout=30, metadata=meta))  # no RPC error
        assert len(acks) == len(msgs)
        sid = msgs[0].header.scene_id if msgs[0].HasField("header") else "x"
        stub.Committed(link_pb2.CommittedRequest(scene_id=sid), timeout=30, metadata=meta)

    one()
    listing = client.get("/v1/scenes")
    assert listing.status_code == 200, listing.text
    for s in listing.json()["scenes"]:
        for route in ("", "/stac", "/tiles.geojson", "/tiles.geojson?crs=scene"):
            r = client.get(f"/v1/scenes/{s['key']}{route}")
            assert r.status_code < 500, (s["key"], route, r.text)
    for route in ("/v1/link", "/metrics", "/healthz", "/readyz"):
        assert client.get(route).status_code == 200, route
    # Counting still alive: a good tile is counted.
    h = link_pb2.SceneHeader(scene_id="fz-good", grid=link_pb2.TileGrid(
        width=128, height=128, tile_size=128, rows=1, cols=1), gsd_m=0.5, input_size=128,
        classes=["aircraft"])
    c = link_pb2.TileChunk(scene_id="fz-good", tile_index=0, codec=link_pb2.JPEG,
                           quality=90, sha256=hashlib.sha256(JPEG).digest(),
                           total_size=len(JPEG), data=JPEG, sent_gsd_m=0.5, resized=True,
                           decision=link_pb2.DOWNLINKED)
    acks = list(stub.Send(iter([link_pb2.DownlinkMessage(seq=1, header=h),
                                link_pb2.DownlinkMessage(seq=2, chunk=c)]),
                          timeout=30, metadata=meta))
    assert acks[-1].status == link_pb2.Ack.COMMITTED, acks[-1].error
    deadline = time.time() + 120
    while client.get("/v1/scenes/fz-good").json()["tiles_counted"] < 1:
        assert time.time() < deadline, "counting stopped"
        time.sleep(0.3)

"""The goodput the link reports (``/v1/link``) agrees with the wire's measurement."""

from __future__ import annotations

import time

import pytest

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from shared.pipeline.codec import sized_jpeg
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


def test_reported_goodput_is_the_wires_after_an_idle_start(tmp_path):
    settings = GroundSettings(auth=False, grpc_host="127.0.0.1", grpc_port=0,
                              db_path=tmp_path / "g.db", link_tls=False)  # TLS: test_link_tls*
    store = SQLiteStore(tmp_path / "g.db")
    server, port = create_server(settings, store)
    server.start()
    try:
        box = Outbox(tmp_path / "o.db")
        rate = 400_000.0
        client = LinkClient(f"127.0.0.1:{port}", box, TokenBucket(rate), batch=1000,
                            deadline_s=60)
        header = link_pb2.SceneHeader(scene_id="g", grid=link_pb2.TileGrid(
            width=1024, height=1024, tile_size=256, rows=4, cols=4))
        box.put_scene([link_pb2.DownlinkMessage(header=header)])
        client.drain_once()  # connected: the header alone
        client.bytes_sent, client.busy_s = 0, 0.0
        time.sleep(0.5)  # the link idles while a scene is processed
        msgs = []
        for i in range(16):
            msgs += [link_pb2.DownlinkMessage(chunk=c) for c in
                     tile_chunks("g", i, i // 4, i % 4, sized_jpeg(60_000, i), 90)]
        box.put_scene(msgs)
        t0 = time.perf_counter()  # as benchmarks/link_goodput.py measures the wire
        while client.drain_once():
            pass
        wire = client.bytes_sent / (time.perf_counter() - t0)
        reported = client.bytes_sent / client.busy_s
        assert client.bytes_sent >= 16 * 60_000
        assert reported == pytest.approx(wire, rel=0.05)
        # never above the bucket's rate (its burst aside; below it on a loaded machine)
        assert reported <= 1.2 * rate
        box.close()
    finally:
        server.stop(None)
        store.close()

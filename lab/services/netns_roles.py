"""The programs run inside the network namespaces of ``deploy/netns.sh``, one per role:

- ``ground DB SECONDS``: the ground's link end (its gRPC server on 192.0.2.2:50051 over a
  SQLite store at DB); prints ``ready`` once it listens, then serves for SECONDS.
- ``send TOTAL DB``: the onboard link client pushes a known payload (16 JPEG tiles of
  TOTAL bytes together, through an outbox at DB) to that ground end as fast as the shaped link
  lets it, and prints ``{"bytes", "payload", "seconds"}``: the bytes on the wire, the payload,
  and the time after a warm-up that connects and sends the scene header alone.
- ``submit PNG SCENE_ID TIMEOUT``: posts one scene to the onboard service and polls the ground
  until the scene is complete; prints its total, provenance, seconds and the bytes sent.

Run as ``python -m lab.services.netns_roles ROLE ARGS...`` inside a namespace
(tests/deploy/test_netns.py, benchmarks/link_goodput.py), with the keys of
``shared.api_keys.Credentials.env()`` in the environment: the ground's settings read theirs
from it; the sender presents the satellite's key over the CA's TLS.
"""

from __future__ import annotations

import json
import os
import sys
import time

GROUND_HOST, GRPC_PORT = "192.0.2.2", 50051  # the ground's end of the veth pair
TILES = 16  # the sender's payload, as a 4 x 4 grid of 256 px tiles


def serve_ground(db_path: str, seconds: float) -> None:
    from ground.link_server import create_server
    from ground.settings import GroundSettings
    from ground.store import SQLiteStore

    settings = GroundSettings(grpc_host=GROUND_HOST, grpc_port=GRPC_PORT, db_path=db_path)
    server, _ = create_server(settings, SQLiteStore(settings.db_path))
    server.start()
    print("ready", flush=True)
    time.sleep(seconds)


def send_payload(total: int, db_path: str) -> dict:
    from onboard.link.client import LinkClient
    from onboard.link.outbox import Outbox
    from onboard.link.ratelimit import TokenBucket
    from shared.api_keys import load_keys
    from shared.pipeline.codec import sized_jpeg
    from shared.wire import link_pb2
    from shared.wire.chunks import tile_chunks
    from shared.wire.tls import channel_credentials

    side = int(TILES ** 0.5)
    header = link_pb2.SceneHeader(scene_id="g", grid=link_pb2.TileGrid(
        width=side * 256, height=side * 256, tile_size=256, rows=side, cols=side))
    messages = [link_pb2.DownlinkMessage(chunk=c)
                for i in range(TILES)
                for c in tile_chunks("g", i, i // side, i % side, sized_jpeg(total // TILES, i),
                                     90)]
    box = Outbox(db_path)
    box.put_scene([link_pb2.DownlinkMessage(header=header)])
    client = LinkClient(
        f"{GROUND_HOST}:{GRPC_PORT}", box, TokenBucket(1e9), batch=1000, deadline_s=120,
        key=load_keys(os.environ["TARGETFUSE_ONBOARD_GROUND_KEY_FILE"])[0],
        credentials=channel_credentials(os.environ["TARGETFUSE_ONBOARD_GROUND_TLS_CA_FILE"]))
    client.drain_once()  # warm up: connects and sends the header alone
    box.put_scene(messages)
    t0 = time.perf_counter()
    while client.drain_once():
        pass
    return {"bytes": box.stats()["bytes_sent"], "payload": total,
            "seconds": time.perf_counter() - t0}


def submit_scene(png_path: str, scene_id: str, timeout: float) -> dict:
    from lab.services.live import get_json, post_scene, wait_until_up

    deadline = time.time() + timeout
    wait_until_up("http://127.0.0.1:8080/healthz", timeout)  # the onboard service is starting
    with open(png_path, "rb") as f:
        post_scene("http://127.0.0.1:8080/v1/scenes", f.read(),
                   {"scene_id": scene_id, "gsd_m": 0.5})
    t0 = time.time()
    while True:
        try:
            g = get_json(f"http://{GROUND_HOST}:8081/v1/scenes/{scene_id}")
        except OSError:
            g = None
        if g and g.get("complete"):
            break
        if time.time() >= deadline:
            raise SystemExit(f"scene {scene_id} not complete after {timeout:g} s")
        time.sleep(0.2)
    onboard = get_json(f"http://127.0.0.1:8080/v1/scenes/{scene_id}")
    return {"total": g["total"], "provenance": g["tiles_by_provenance"],
            "seconds": time.time() - t0, "bytes": onboard["downlink"]["bytes_sent"]}


def main(argv: list[str] | None = None) -> int:
    role, *args = argv if argv is not None else sys.argv[1:]
    if role == "ground":
        serve_ground(args[0], float(args[1]))
    elif role == "send":
        print(json.dumps(send_payload(int(args[0]), args[1])))
    elif role == "submit":
        print(json.dumps(submit_scene(args[0], args[1], float(args[2]))))
    else:
        raise SystemExit(f"unknown role {role!r}: ground, send or submit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

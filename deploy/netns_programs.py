"""Programs run inside the network namespaces of deploy/netns.sh (``python -c``): a ground
link end, a sender that pushes a known payload through the onboard link client, and a scene
submitter. tests/deploy/test_netns.py and benchmarks/link_goodput.py run them, with the keys
of ``shared.api_keys.Credentials.env()`` in their environment (the ground's settings read
theirs from it; the sender presents the satellite's key)."""

GROUND = """
import sys, time
from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
s = GroundSettings(grpc_host="192.0.2.2", grpc_port=50051, db_path=sys.argv[1])
store = SQLiteStore(s.db_path)
server, port = create_server(s, store)
server.start()
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
"""

SENDER = """
import json, os, sys, time
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from shared.pipeline.codec import sized_jpeg
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks
total, db = int(sys.argv[1]), sys.argv[2]
n = 16
h = link_pb2.SceneHeader(scene_id="g", grid=link_pb2.TileGrid(width=4 * 256, height=4 * 256,
                         tile_size=256, rows=4, cols=4))
msgs = []
for i in range(n):
    msgs += [link_pb2.DownlinkMessage(chunk=c) for c in
             tile_chunks("g", i, i // 4, i % 4, sized_jpeg(total // n, i), 90)]
box = Outbox(db)
box.put_scene([link_pb2.DownlinkMessage(header=h)])
from shared.api_keys import load_keys
from shared.wire.tls import channel_credentials
key = load_keys(os.environ["TARGETFUSE_ONBOARD_GROUND_KEY_FILE"])[0]
ca = channel_credentials(os.environ["TARGETFUSE_ONBOARD_GROUND_TLS_CA_FILE"])
client = LinkClient("192.0.2.2:50051", box, TokenBucket(1e9), batch=1000, deadline_s=120,
                    key=key, credentials=ca)
client.drain_once()  # warm up: connects and sends the header alone
box.put_scene(msgs)
t0 = time.perf_counter()
while client.drain_once():
    pass
dt = time.perf_counter() - t0
print(json.dumps({"bytes": box.stats()["bytes_sent"], "payload": total, "seconds": dt}))
"""

SUBMIT = """
import json, sys, time
from lab.services.live import get_json, post_scene, wait_until_up
png, sid, timeout = open(sys.argv[1], "rb").read(), sys.argv[2], float(sys.argv[3])
deadline = time.time() + timeout
wait_until_up("http://127.0.0.1:8080/healthz", timeout)  # the onboard service is starting
post_scene("http://127.0.0.1:8080/v1/scenes", png, {"scene_id": sid, "gsd_m": 0.5})
t0 = time.time()
while True:
    try:
        g = get_json(f"http://192.0.2.2:8081/v1/scenes/{sid}")
    except OSError:
        g = None
    if g and g.get("complete"):
        break
    assert time.time() < deadline, "scene not complete"
    time.sleep(0.2)
o = get_json(f"http://127.0.0.1:8080/v1/scenes/{sid}")
print(json.dumps({"total": g["total"], "provenance": g["tiles_by_provenance"],
                  "seconds": time.time() - t0, "bytes": o["downlink"]["bytes_sent"]}))
"""

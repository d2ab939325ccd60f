"""Counting throughput of the ground segment with 1 and 2 counting workers.

Each worker is its own process (``targetfuse-ground-worker``, one torch thread), on a fresh
PostgreSQL database and a fresh JetStream stream (the servers of ``--postgres`` and
``--nats``). Once every worker is up (its heartbeat file exists), ``--tiles`` real JPEG tiles
(random texture at the counter's input size, as the onboard side sends them resized) are
committed through the link end's own ``receive`` and announced; the figure is tiles per
second from the first announcement to the last committed count. Prints one row per worker
count and the ratio to one worker (measured in one run: the machine is shared).

    .venv/bin/python benchmarks/segment_throughput.py --workers 1,2 --tiles 64 \
        --out docs/constellation/throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np


def measure(workers: int, tiles: int, admin: str, nats_url: str, model: str) -> dict:
    from ground.link_server import announcer, receive
    from ground.store import PostgresStore
    from ground.tile_queue import NatsTileQueue
    from lab.services.live import fresh_database
    from shared.imageio import encode
    from shared.wire import link_pb2
    from shared.wire.chunks import tile_chunks

    url, drop = fresh_database(admin, "tf_bench")
    stream = f"TFBENCH_{uuid.uuid4().hex[:8].upper()}"
    store = PostgresStore(url)
    queue = NatsTileQueue(nats_url, stream=stream, prefix=f"{stream.lower()}.tiles")
    work = Path(tempfile.mkdtemp(prefix="tf-seg-"))
    env = {**os.environ, "TARGETFUSE_GROUND_DATABASE_URL": url,
           "TARGETFUSE_GROUND_NATS_URL": nats_url, "TARGETFUSE_GROUND_NATS_STREAM": stream,
           "TARGETFUSE_GROUND_MODEL": model, "TARGETFUSE_GROUND_THREADS": "1"}
    exe = str(Path(sys.executable).with_name("targetfuse-ground-worker"))
    procs = [subprocess.Popen([exe], env={**env, "TARGETFUSE_GROUND_WORKER_HEARTBEAT":
                                          str(work / f"w{i}")},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(workers)]
    try:
        deadline = time.time() + 300
        while not all((work / f"w{i}").exists() for i in range(workers)):
            if time.time() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("a worker did not start")
            time.sleep(0.5)
        h = link_pb2.SceneHeader(scene_id="bench", grid=link_pb2.TileGrid(
            width=256 * tiles, height=256, tile_size=256, rows=1, cols=tiles), input_size=256)
        receive(store, link_pb2.DownlinkMessage(header=h), "bench")
        rng = np.random.default_rng(0)
        blobs = [encode(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), ".jpg", 75)
                 for _ in range(tiles)]
        on_commit = announcer(queue)
        t0 = time.perf_counter()
        for i, data in enumerate(blobs):
            for c in tile_chunks("bench", i, 0, i, data, 75, resized=True):
                receive(store, link_pb2.DownlinkMessage(chunk=c), "bench", on_commit)
        depth = []  # the queue over time: waiting for a worker, and being counted
        while store.count_uncounted():
            depth.append({"t": round(time.perf_counter() - t0, 2), **queue.consumer_state()})
            time.sleep(0.25)
        seconds = time.perf_counter() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        queue.delete_stream()
        queue.close()
        store.close()
        drop()
    return {"workers": workers, "tiles": tiles, "seconds": round(seconds, 2),
            "tiles_s": round(tiles / seconds, 2), "queue": depth}


def plot_queue(rows: list[dict], path: Path) -> None:
    """Tiles waiting for a worker over each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    for r in rows:
        ax.step([q["t"] for q in r["queue"]], [q["pending"] for q in r["queue"]], where="post",
                label=f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}")
    ax.set_xlabel("seconds since the first tile")
    ax.set_ylabel("tiles waiting")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    from lab.services.live import dev_nats, dev_postgres

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2")
    p.add_argument("--tiles", type=int, default=64)
    p.add_argument("--model", default="objects")
    p.add_argument("--postgres", default=dev_postgres())
    p.add_argument("--nats", default=dev_nats())
    p.add_argument("--out", default=None,
                   help="write the rows (with the queue depth over time) to this JSON file")
    args = p.parse_args(argv)
    rows = [measure(int(w), args.tiles, args.postgres, args.nats, args.model)
            for w in args.workers.split(",")]
    print(f"{'workers':>7} {'tiles':>6} {'seconds':>8} {'tiles/s':>8} {'vs 1':>6}")
    for r in rows:
        print(f"{r['workers']:>7} {r['tiles']:>6} {r['seconds']:>8.2f} {r['tiles_s']:>8.2f} "
              f"{r['tiles_s'] / rows[0]['tiles_s']:>5.2f}x")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(
            {"command": "benchmarks/segment_throughput.py " + " ".join(argv or sys.argv[1:]),
             "cpus": os.cpu_count(), "model": args.model, "rows": rows}, indent=1) + "\n")
        plot_queue(rows, Path(args.out).with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ground counting throughput against the raw model forward, by torch thread count.

Real Airbus tiles (512 px at 0.5 m, resized to the counter's 256 px input and JPEG-encoded
at quality 90, as the onboard side sends them) are committed to a ground store; the ground's
counting path (``ground.counting.count_pending``: read from SQLite, decode, prepare, batch,
forward at the card's precision, write the counts back) counts them all, and the raw model
forward (``GroundCounter.run_batch``'s network call on the same tiles, already decoded and
batched as tensors) runs on the same tiles at the same batch size. Alternated, best of
``--repeats`` for each, for every thread setting: tiles per second and their ratio, from
one run. ``--busy`` runs the same with a spinning process on another core (the contention
the onboard thread default was chosen under).

    .venv/bin/python benchmarks/ground_throughput.py --tiles 64 --threads 1,2 \\
        --out docs/performance/ground.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ground.counter import GroundCounter
from ground.counting import count_pending
from ground.store import SQLiteStore
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.preprocess import prepare_tile
from shared.wire.chunks import tile_chunks


def real_tiles(n: int) -> list[bytes]:
    from scenes import real_scenes  # real ones, else the shipped sample's, else generated

    out = []
    for pixels in real_scenes(-(-n // 25)):  # 25 tiles of 512 px a scene
        for y in range(0, pixels.shape[0] - 511, 512):
            for x in range(0, pixels.shape[1] - 511, 512):
                out.append(encode_tile(downlink_pixels(pixels[y:y + 512, x:x + 512], 512,
                                                       256), 90))
                if len(out) == n:
                    return out
    return out


def counting_path(counter: GroundCounter, tiles: list[bytes], batch: int) -> float:
    """Seconds for the ground's counting step to count every tile, from a fresh store."""
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "g.db")
        for i, data in enumerate(tiles):
            chunk = tile_chunks("bench", i, 0, i, data, 90, sent_gsd_m=1.0,
                                chunk_bytes=len(data) + 1)[0]
            store.commit_tile(chunk, data)
        t0 = time.perf_counter()
        while count_pending(store, counter, None, batch):
            pass
        seconds = time.perf_counter() - t0
        store.close()
    return seconds


def raw_forward(counter: GroundCounter, tiles: list[bytes], batch: int) -> float:
    """Seconds for the network alone (the precision and rotations the counter uses)."""
    x = np.stack([prepare_tile(decode_tile(t), counter.input_size, 1.0) for t in tiles])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(counter.precision)
    t0 = time.perf_counter()
    for k in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[k:k + batch], np.float32))
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                    enabled=dtype is not None):
            out = counter.net(xb)  # its passes and rotations
        out[0].float().numpy()
    return time.perf_counter() - t0


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiles", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", type=int, default=16, help="the ground's default batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--busy", action="store_true", help="keep another core busy")
    p.add_argument("--out", default=None, help="JSON results file to merge rows into")
    args = p.parse_args()
    tiles = real_tiles(args.tiles)
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    if args.busy:
        spinner.start()
    rows = []
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            counter = GroundCounter.shipped("objects", threads=threads, batch_size=args.batch)
            raw_forward(counter, tiles[: args.batch], args.batch)  # warm-up
            path, raw = [], []
            for _ in range(args.repeats):
                path.append(counting_path(counter, tiles, args.batch))
                raw.append(raw_forward(counter, tiles, args.batch))
            row = {"threads": threads, "busy_core": args.busy, "tiles": len(tiles),
                   "precision": counter.precision, "tta": bool(counter.tta),
                   "counting_tiles_s": round(len(tiles) / min(path), 2),
                   "raw_tiles_s": round(len(tiles) / min(raw), 2),
                   "ratio": round(min(raw) / min(path), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join(5)
    if args.out:
        out = Path(args.out)
        old = json.loads(out.read_text()) if out.exists() else {"rows": []}
        keys = {(r["threads"], r["busy_core"]) for r in rows}
        merged = [r for r in old["rows"] if (r["threads"], r["busy_core"]) not in keys] + rows
        merged.sort(key=lambda r: (r["busy_core"], r["threads"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                   "rows": merged}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Onboard peak memory against the number of tiles: is what is kept per tile bounded?

Each scene (``benchmarks/scenes.py``: k x k pieces of 2560 px, GeoTIFF) is processed by the
onboard service's own ``SceneProcessor`` at the default settings in a fresh child process
started by exec, whose peak RSS is read from ``VmHWM`` (its own: ``ru_maxrss`` would carry
the parent's). Prints each scene's tiles, peak RSS and its ratio to the first scene's.

A scene is ``k:gsd``: k x k pieces, processed as if at ``gsd`` m/px (the counter's input
covers ``256 * 0.5 / gsd`` source px, so 2.0 cuts 64 px tiles: the 10k scene then has the
40k scene's 25,600 tiles). With ``--stub`` the counter's onnxruntime session runs once
(its memory allocated) and then answers every tile with zeros of its output shapes: what
is measured is then everything but inference, which on a loaded machine makes a scene of
25,600 tiles affordable (a proxy for the 40k scene; the figure of record is the real one):

    .venv/bin/python benchmarks/onboard_memory.py --scenes 2:0.5,16:0.5
    .venv/bin/python benchmarks/onboard_memory.py --stub --scenes 2:0.5,4:2.0 \\
        --revisit-cache 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onboard_scenes import digest, peak_rss_mb  # noqa: E402


class _StubSession:
    """Answers like the real session (shapes, dtypes) with zeros, without running it."""

    def __init__(self, session):
        self.session = session
        inp = session.get_inputs()[0]
        x = np.zeros([1, *inp.shape[1:]], np.uint8 if "uint8" in inp.type else np.float32)
        self.outputs = session.run(None, {inp.name: x})

    def __getattr__(self, name):
        return getattr(self.session, name)

    def run(self, names, feeds):
        n = len(next(iter(feeds.values())))
        return [np.zeros((n, *o.shape[1:]), o.dtype) for o in self.outputs]


def one(path: Path, gsd: float, stub: bool, revisit: int | None = None) -> dict:
    from onboard.counter import OnboardCounter
    from onboard.link.outbox import Outbox
    from onboard.processing import SceneProcessor
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    work = Path(tempfile.mkdtemp(prefix="tf-onboard-mem-"))
    settings = OnboardSettings(data_dir=work, threads=1, revisit_cache_bytes=revisit)
    box = Outbox(work / "onboard.db")
    counter = OnboardCounter.shipped(settings.model, settings.models_dir, threads=1,
                                     variant=settings.precision)
    if stub:
        counter.session = _StubSession(counter.session)
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    result = proc.process("mem", str(path), {"gsd_m": gsd})
    row = {"tiles": result["tiles"], "tile_size": result["tile_size"],
           "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
           "rss_before_mb": round(rss0, 1), "stub": stub, "digest": digest(result)}
    box.close()
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenes", default="2:0.5,16:0.5", help="k:gsd, comma-separated")
    p.add_argument("--stub", action="store_true", help="zeros for the model's outputs")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "targetfuse-bench"))
    p.add_argument("--timeout", type=float, default=7200)
    p.add_argument("--revisit-cache", type=int, default=None,
                   help="revisit cache bytes (default: the service's). A proxy scene cut "
                        "at 64 px has a mosaic 16x the pixels of one cut at 256 px, which "
                        "the cache may keep where the 40k scene's is never built: 0 keeps "
                        "that out of the comparison")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--gsd", type=float, default=0.5, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one), args.gsd, args.stub, args.revisit_cache)))
        return 0
    from scenes import scene_file, source

    rows = []
    for spec in args.scenes.split(","):
        k, gsd = spec.split(":")
        path = scene_file(Path(args.work), "tif", int(k))
        cmd = [sys.executable, __file__, "--one", str(path), "--gsd", gsd] + \
            (["--stub"] if args.stub else []) + \
            ([] if args.revisit_cache is None else ["--revisit-cache", str(args.revisit_cache)])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        if out.returncode:
            raise SystemExit(out.stderr.strip().splitlines()[-1])
        row = {"scene": f"{int(k) * 2560} px", "gsd_m": float(gsd), "imagery": source(),
               **json.loads(out.stdout.strip().splitlines()[-1])}
        row["rss_ratio_to_first"] = round(row["peak_rss_mb"] / rows[0]["peak_rss_mb"], 3) \
            if rows else 1.0
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

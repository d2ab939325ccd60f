"""Onboard processing by scene size and format: time, peak memory, and inference's share.

Each scene (``benchmarks/scenes.py``: real Airbus scenes mosaicked to 5k, 10k, 20k and 40k
px a side, as GeoTIFF, PNG and JPEG) is processed once by the onboard service's own
processor (``SceneProcessor.process``: decode, plan, encode, outbox; default settings, one
onnxruntime thread) in a fresh child process, so each peak RSS is that scene's alone. The
child then times raw onnxruntime (``session.run``, nothing else) on the inputs of exactly
the tiles the processor counted: inference's share of processing is that time over the
processing time, measured in the same run. With ``--profile`` a second, profiled run splits
processing time into parts (cProfile exclusive time; the profiler's own overhead inflates
the parts with many small calls).

    .venv/bin/python benchmarks/onboard_scenes.py --sizes 2,4,8 --formats tif,png,jpg \\
        --out docs/performance/onboard.json

Results merge into ``--out`` by (format, size), so runs can add rows;
``benchmarks/report.py`` writes ``docs/PERFORMANCE.md`` from them.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Which functions' exclusive time counts as which part (matched on "file:function").
PARTS = {
    "inference": ("InferenceSession", "inference_collection.py:run", "counter.py:run_batch",
                  "onnxruntime_pybind11_state.run"),
    "decode and read": ("DatasetReaderBase", "processing.py:__getitem__", "ascontiguousarray",
                        "imdecode", "read_rgb", "strips.py"),
    "descriptors and thumbnails": ("dedup.py:descriptor", "dedup.py:_log_hu",
                                   "dedup.py:grey", "dedup.py:thumbnail", "meanStdDev",
                                   "HuMoments", "moments", "Sobel", "magnitude", "cvtColor"),
    "verification": ("dedup.py:residual", "dedup.py:near_duplicate", "percentile",
                     "interp", "_quantile", "blur", "partition", "dedup.py:reuse_source",
                     "dedup.py:_nearest"),
    "contexts (k-means)": ("silhouette", "kmeans", "KMeans", "_k_means", "pairwise", "cdist"),
    "tile preparation": ("preprocess.py", "resize"),
    "confidence": ("confidence.py",),
    "jpeg encoding": ("imencode", "encode_tile"),
    "throttling": ("throttling.py", "value_policy.py", "decisions.py", "selection.py"),
    "outbox": ("outbox.py", "sqlite", "chunks.py", "SerializeToString"),
}


def part_of(key: tuple) -> str:
    name = f"{key[0].rsplit('/', 1)[-1]}:{key[2]}"
    for part, marks in PARTS.items():
        if any(m in name for m in marks):
            return part
    return "rest"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def one(path: Path, profile: bool, raw_timing: bool = True) -> dict:
    """Process one scene here (the child): the figures of one run."""
    import numpy as np

    from onboard.counter import OnboardCounter
    from onboard.link.outbox import Outbox
    from onboard.processing import SceneProcessor, open_scene
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings
    from shared.preprocess import prepare_tile

    work = Path(tempfile.mkdtemp(prefix="tf-onboard-bench-"))
    settings = OnboardSettings(data_dir=work, threads=1)
    box = Outbox(work / "onboard.db")
    counter = OnboardCounter.shipped(settings.model, settings.models_dir, threads=1)
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    counted: list[int] = []
    sizes: list[int] = []
    real = counter.count_tile

    def count_tile(i, tile, size, channels=None):  # the real counter, its calls noted
        counted.append(i)
        sizes.append(size)
        return real(i, tile, size, channels)

    counter.count_tile = count_tile
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    result = proc.process("bench", str(path), {"gsd_m": 0.5})
    seconds = time.perf_counter() - t0
    rss = peak_rss_mb()
    # Raw onnxruntime on the inputs of the tiles that were counted, one at a time as the
    # processor runs them (tiles read again here; only session.run is timed).
    raw = 0.0
    inferences = len(counted)
    with open_scene(path, settings, work / "raw") as pixels:
        if not raw_timing:
            counted, sizes = [], []
        from shared.tile_grid import TileGrid

        grid = TileGrid(pixels.shape[1], pixels.shape[0], result["tile_size"])
        for i, size in zip(counted, sizes, strict=True):
            x = prepare_tile(grid.crop(pixels, i), counter.input_size,
                             counter.input_size / size)[None].astype(np.float32)
            t1 = time.perf_counter()
            counter.session.run(None, {counter.input_name: x})
            raw += time.perf_counter() - t1
    row = {"tiles": result["tiles"], "tile_size": result["tile_size"],
           "inferences": inferences, "seconds": round(seconds, 2),
           "seconds_per_tile": round(seconds / max(result["tiles"], 1), 4),
           **({"raw_inference_seconds": round(raw, 2),
               "inference_share": round(raw / seconds, 3)} if raw_timing else {}),
           "peak_rss_mb": round(rss, 1), "rss_before_mb": round(rss0, 1),
           "tiles_by_decision": result["tiles_by_decision"]}
    if profile:
        # A processor of its own: the first one's revisit cache holds this very scene.
        proc = SceneProcessor(settings, ScenesDB(box), counter)
        prof = cProfile.Profile()
        prof.enable()
        proc.process("bench-profiled", str(path), {"gsd_m": 0.5})
        prof.disable()
        shares: dict[str, float] = {}
        rest = []
        for key, (_, _, tt, _, _) in pstats.Stats(prof).stats.items():
            shares[part_of(key)] = shares.get(part_of(key), 0.0) + tt
            if part_of(key) == "rest":
                rest.append((tt, f"{key[0].rsplit('/', 1)[-1]}:{key[2]}"))
        total = sum(shares.values()) or 1.0
        row["profile_shares"] = {k: round(v / total, 3) for k, v in
                                 sorted(shares.items(), key=lambda kv: -kv[1])}
        row["profile_rest_top"] = [[n, round(t / total, 3)] for t, n in sorted(rest)[::-1][:6]]
    box.close()
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="2,4,8", help="mosaic widths in 2560 px scenes")
    p.add_argument("--formats", default="tif,png,jpg")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "targetfuse-bench"),
                   help="where the generated scenes are kept (outside the repository)")
    p.add_argument("--profile", default="2", help="sizes also profiled (comma-separated)")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--no-raw", action="store_true",
                   help="skip timing raw onnxruntime (memory only: halves a large scene's run)")
    p.add_argument("--out", default=None, help="JSON results file to merge rows into")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one), args.profile == "yes", not args.no_raw)))
        return 0
    from scenes import scene_file

    profiled = {int(s) for s in args.profile.split(",") if s}
    rows = []
    for k in (int(s) for s in args.sizes.split(",")):
        for fmt in args.formats.split(","):
            path = scene_file(Path(args.work), fmt, k)
            cmd = [sys.executable, __file__, "--one", str(path),
                   "--profile", "yes" if k in profiled else "no"] + \
                (["--no-raw"] if args.no_raw else [])
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     timeout=args.timeout, env={**os.environ,
                                                                "OMP_NUM_THREADS": "1"})
                row = json.loads(out.stdout.strip().splitlines()[-1])
            except subprocess.CalledProcessError as exc:
                row = {"error": exc.stderr.strip().splitlines()[-1][:300]}
            except subprocess.TimeoutExpired:
                row = {"error": f"not finished in {args.timeout:g} s"}
            row = {"format": fmt, "side_px": k * 2560, "file_mb":
                   round(path.stat().st_size / 1e6, 1), **row}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        out = Path(args.out)
        old = json.loads(out.read_text()) if out.exists() else {"rows": []}
        keep = [r for r in old["rows"] if (r["format"], r["side_px"]) not in
                {(r2["format"], r2["side_px"]) for r2 in rows}]
        merged = sorted(keep + rows, key=lambda r: (r["format"], r["side_px"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                   "rows": merged}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

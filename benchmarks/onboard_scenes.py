"""Onboard processing by scene size and format: time, peak memory, and inference's share.

Each scene (``benchmarks/scenes.py``: real Airbus scenes mosaicked to 5k, 10k, 20k and 40k
px a side, as GeoTIFF, PNG and JPEG; on a fresh clone without the real-dev data, pieces of
the shipped Pleiades sample, else generated ones: the row's ``imagery`` says which) is
processed once by the onboard service's own processor (``SceneProcessor.process``: decode,
plan, encode, outbox; default settings, one onnxruntime thread) in a fresh child process
(started by exec, its peak RSS read from ``VmHWM``, which an exec resets: ``ru_maxrss``
carried the parent's peak into the child), so each peak RSS is that scene's alone.
Inference's share is the time spent inside onnxruntime's ``session.run`` during that very
processing over the processing time (nothing read or run again), in wall time and in CPU
time (the figure to compare on a loaded machine, where waiting for a core inflates both
halves of the wall-time ratio unevenly). Each row also carries a
digest of the scene's decisions, counts and planned bytes; ``--expect FILE`` compares them
with an earlier results file's rows (every decision and count unchanged, or which differ).
With ``--profile`` a second, profiled run splits processing time into parts (cProfile
exclusive time; the profiler's own overhead inflates the parts with many small calls).

    .venv/bin/python benchmarks/onboard_scenes.py --sizes 2,4,8 --formats tif,png,jpg \\
        --out docs/performance/onboard.json

Results merge into ``--out`` by (format, size), so runs can add rows;
``targetfuse report-performance`` writes ``docs/PERFORMANCE.md`` from them.
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
    "decode and read": ("DatasetReaderBase", "scene_pixels.py:__getitem__", "ascontiguousarray",
                        "imdecode", "read_rgb", "strips.py", "tiles.py:get", "tiles.py:put",
                        "pread", "pwrite"),
    "descriptors and thumbnails": ("dedup.py:descriptor", "dedup.py:_log_hu",
                                   "dedup.py:grey", "dedup.py:thumbnail", "meanStdDev",
                                   "HuMoments", "moments", "Sobel", "magnitude", "cvtColor"),
    "verification": ("dedup.py:residual", "dedup.py:near_duplicate", "percentile",
                     "interp", "_quantile", "blur", "partition", "dedup.py:reuse_source",
                     "dedup.py:_nearest", "dedup.py:_within", "dedup.py:rms_lower_bound",
                     "dedup.py:block_stats", "dedup.py:stats", "dedup.py:_interp_rows",
                     "dedup.py:rms_lower_bounds", "dedup.py:cached_stats", "<erode>"),
    "contexts (k-means)": ("silhouette", "kmeans", "KMeans", "_k_means", "pairwise", "cdist"),
    "tile preparation": ("preprocess.py", "resize", "<LUT>"),
    # batching one tile's input and splitting the outputs around each session.run
    "counting around the model": ("counting.py", "shape_base.py:stack", "counter.py:run_at",
                                  "counter.py:count_tile", "processing.py:count_fn"),
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
    """This process's peak resident memory: ``VmHWM`` (reset by exec, so a child's own),
    else ``ru_maxrss`` (which on Linux keeps the peak of the process it was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _TimedSession:
    """An onnxruntime session whose ``run`` adds its wall time to ``seconds`` and its CPU
    time (the process's: onnxruntime's threads included) to ``cpu_seconds``."""

    def __init__(self, session):
        self.session, self.seconds, self.cpu_seconds, self.calls = session, 0.0, 0.0, 0

    def __getattr__(self, name):
        return getattr(self.session, name)

    def run(self, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return self.session.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.cpu_seconds += time.process_time() - c0
            self.calls += 1


def digest(result: dict) -> str:
    """The scene's decisions, counts, confidences and planned bytes, hashed."""
    import hashlib

    keep = [result["tile_size"], result["per_tile"], result["downlink_bytes_planned"],
            result["downlink_budget_bytes"], result["onboard_inferences"]]
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def one(path: Path, profile: bool, raw_timing: bool = True) -> dict:
    """Process one scene here (the child): the figures of one run."""
    from onboard.counter import OnboardCounter
    from onboard.link.outbox import Outbox
    from onboard.processing import SceneProcessor
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    work = Path(tempfile.mkdtemp(prefix="tf-onboard-bench-"))
    settings = OnboardSettings(data_dir=work, threads=1)
    box = Outbox(work / "onboard.db")
    counter = OnboardCounter.shipped(settings.model, settings.models_dir, threads=1,
                                     variant=settings.precision)
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    session = counter.session = _TimedSession(counter.session)
    rss0 = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = proc.process("bench", str(path), {"gsd_m": 0.5})
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = peak_rss_mb()
    counter.session = session.session
    row = {"tiles": result["tiles"], "tile_size": result["tile_size"],
           "inferences": result["onboard_inferences"], "seconds": round(seconds, 2),
           "seconds_per_tile": round(seconds / max(result["tiles"], 1), 4),
           **({"raw_inference_seconds": round(session.seconds, 2),
               "inference_share": round(session.seconds / seconds, 3),
               # CPU time: the share on a loaded machine, where waiting inflates wall time
               "cpu_seconds": round(cpu, 2),
               "inference_cpu_share": round(session.cpu_seconds / max(cpu, 1e-9), 3)}
              if raw_timing else {}),
           "precision": counter.variant,
           "peak_rss_mb": round(rss, 1), "rss_before_mb": round(rss0, 1),
           "tiles_by_decision": result["tiles_by_decision"], "digest": digest(result)}
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
                   help="leave inference's share out of the rows (memory and time only)")
    p.add_argument("--expect", default=None,
                   help="an earlier results file: say whether each scene's decisions and "
                        "counts (its digest) are unchanged")
    p.add_argument("--out", default=None, help="JSON results file to merge rows into")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one), args.profile == "yes", not args.no_raw)))
        return 0
    from scenes import scene_file, source

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
            row = {"format": fmt, "side_px": k * 2560, "imagery": source(), "file_mb":
                   round(path.stat().st_size / 1e6, 1), **row}
            rows.append(row)
            print(json.dumps(row), flush=True)
    changed = 0
    if args.expect:
        old = {(r["format"], r["side_px"]): r for r in
               json.loads(Path(args.expect).read_text())["rows"]}
        for r in rows:
            ref = old.get((r["format"], r["side_px"]), {}).get("digest")
            verdict = "no earlier digest" if ref is None or "digest" not in r else \
                "decisions and counts unchanged" if ref == r["digest"] else "CHANGED"
            changed += verdict == "CHANGED"
            print(f"{r['format']} {r['side_px']}: {verdict}", flush=True)
        if changed:
            print(f"{changed} scene(s) planned differently from {args.expect}")
    if args.out:
        out = Path(args.out)
        old = json.loads(out.read_text()) if out.exists() else {"rows": []}
        keep = [r for r in old["rows"] if (r["format"], r["side_px"]) not in
                {(r2["format"], r2["side_px"]) for r2 in rows}]
        merged = sorted(keep + rows, key=lambda r: (r["format"], r["side_px"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                   "rows": merged}, indent=1) + "\n")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Counter speed and accuracy variants, measured in one run (these machines are noisy).

- Onboard: the fp32 ONNX export against the deployed int8 model (static QDQ quantisation,
  ``lab/shipping/quantize.py``, calibrated on training tiles by ``targetfuse ship``), one thread.
- Ground: the deep counter in fp32 against bf16 autocast on CPU (fp16 on CUDA when present).

For each pair: milliseconds per tile on one thread (median of interleaved repeats over the
same tiles), FLOPs per tile (from the model cards: convolutions and linear layers counted on a
real forward pass), and scene-level relative CMAE on the chosen images. The ground is also
timed with its test-time augmentation (four rotations) when its card turns it on. Prints a
table and optionally writes JSON.

    .venv/bin/python benchmarks/counters.py --model aircraft \\
        --data ../shared/data/real-dev/airbus_aircraft --format airbus-csv --gsd 0.5 \\
        --classes Airplane,Truncated_airplane --images models/splits/airbus_aircraft.json:test
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import numpy as np

from ground.counter import GroundCounter
from lab.data.formats import read_dataset
from lab.data.label_cleaning import DEFAULT_IOU
from lab.evaluation.evaluate import truth_objects
from lab.evaluation.options import select_images
from onboard.counter import OnboardCounter
from shared.model_bundle import MODELS_DIR


def _tiles(images, counter, limit: int) -> np.ndarray:
    tiles = (t for img in images for t in counter.inputs(img.load_pixels(), img.meta.gsd_m))
    return np.stack(list(itertools.islice(tiles, limit)))


def time_per_tile(run, tiles: np.ndarray, batch: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(tiles), batch):
            run(tiles[i:i + batch])
        times.append(1000 * (time.perf_counter() - t0) / len(tiles))
    return times


def rel_cmae(counter, images, classes) -> float:
    errs, truths = [], []
    for img in images:
        out = counter.count(img.load_pixels(), img.meta.gsd_m)
        total = out.outputs.total if hasattr(out, "outputs") else out.total
        truth = len(truth_objects(img, classes, DEFAULT_IOU)[0])
        errs.append(abs(total - truth))
        truths.append(truth)
    return float(np.mean(errs) / max(np.mean(truths), 1e-9))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="aircraft")
    p.add_argument("--data", required=True)
    p.add_argument("--format", required=True, dest="fmt")
    p.add_argument("--gsd", type=float, default=None)
    p.add_argument("--classes", required=True)
    p.add_argument("--images", default=None, help="FILE:PART of a split JSON")
    p.add_argument("--tiles", type=int, default=64, help="tiles timed per variant")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--json", default=None)
    args = p.parse_args()
    classes = set(args.classes.split(","))
    ds = read_dataset(args.data, args.fmt, gsd_m=args.gsd)
    images = select_images(ds.images, args.images)
    models = Path(args.models_dir)
    fp32 = OnboardCounter.shipped(args.model, models, threads=1, variant="fp32")
    int8 = OnboardCounter.shipped(args.model, models, threads=1)
    result: dict = {"onboard_deployed": int8.card.weights}
    tiles = _tiles(images, fp32, args.tiles)
    t_fp32, t_int8 = [], []
    for _ in range(args.repeats):  # interleaved so machine noise hits both alike
        t_fp32 += time_per_tile(fp32.run_batch, tiles, 1, 1)
        t_int8 += time_per_tile(int8.run_batch, tiles, 1, 1)
    result["onboard"] = {
        "fp32_ms_per_tile": statistics.median(t_fp32),
        "int8_ms_per_tile": statistics.median(t_int8),
        "fp32_relative_cmae": rel_cmae(fp32, images, classes),
        "int8_relative_cmae": rel_cmae(int8, images, classes)}
    ground = {prec: GroundCounter.shipped(args.model, models, precision=prec, threads=1,
                                          batch_size=8) for prec in ("fp32", "bf16")}
    tiles = tiles[: max(16, args.tiles // 2)]
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for prec, counter in ground.items():
            times[prec] += time_per_tile(counter.run_batch, tiles, 8, 1)
    result["ground"] = {f"{prec}_ms_per_tile": statistics.median(t) for prec, t in times.items()}
    result["onboard"]["flops_per_tile"] = int8.card.flops_per_tile
    result["ground"]["flops_per_tile"] = ground["fp32"].card.flops_per_tile
    result["ground"]["tta"] = bool(ground["fp32"].tta)
    for prec, counter in ground.items():
        result["ground"][f"{prec}_relative_cmae"] = rel_cmae(counter, images, classes)
    result["images"] = len(images)
    print(json.dumps(result, indent=1))
    o, g = result["onboard"], result["ground"]
    print(f"onboard: {o['flops_per_tile'] / 1e9:.2f} GFLOPs per tile, fp32 "
          f"{o['fp32_ms_per_tile']:.1f} ms, int8 {o['int8_ms_per_tile']:.1f} ms per tile")
    print(f"ground: {g['flops_per_tile'] / 1e9:.2f} GFLOPs per tile (x4 with TTA: {g['tta']}), "
          f"fp32 {g['fp32_ms_per_tile']:.1f} ms per tile (1 thread)")
    print(f"onboard int8/fp32 time ratio {o['int8_ms_per_tile'] / o['fp32_ms_per_tile']:.2f}, "
          f"relative CMAE {o['fp32_relative_cmae']:.4f} -> {o['int8_relative_cmae']:.4f}")
    print(f"ground bf16/fp32 time ratio {g['bf16_ms_per_tile'] / g['fp32_ms_per_tile']:.2f}, "
          f"relative CMAE {g['fp32_relative_cmae']:.4f} -> {g['bf16_relative_cmae']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

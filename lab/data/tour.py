"""``targetfuse tour``: a tour of the data layer and the counters.

It generates a synthetic airport scene and revisits of it, writes them in an annotation
format, reads them back, prints the per-tile truth that every later stage is scored against,
reads the real development datasets when present, and draws both kinds of scene to PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.data.formats import read_dataset, write_dataset
from lab.data.label_cleaning import merge_duplicates
from lab.data.realdev import REAL_DEV, add_real_dev_option, load_real, real_dev_root
from lab.data.splits import split_images
from lab.data.visualize import save
from shared.annotations import Dataset
from shared.tile_grid import TileGrid, true_counts

TILE = 256


def add_parser(sub) -> None:
    p = sub.add_parser("tour", help="a tour of the data layer and the counters")
    p.add_argument("--out", default="out/tour", help="where to write results")
    add_real_dev_option(p)
    p.set_defaults(func=lambda a: run(a.out, a.real_dev))


def run(out: str | Path, real_dev: str | Path | None = None) -> int:
    from lab.synth import SceneConfig, generate_revisits, generate_scene, revisit_real

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print("targetfuse tour: the data layer and the counters "
          "(the live system is targetfuse demo)\n")

    config = SceneConfig(width=1024, height=1024, gsd_m=0.5, layout="airport")
    scene = generate_scene(config, seed=7, image_id="airport_seed7")
    revisits = generate_revisits(config, seed=8, n=3, max_shift_px=40, scene_id="airport_rv")
    written = write_dataset(Dataset([scene, *revisits], list(config.classes)),
                            out / "synthetic", "dota")
    ds = read_dataset(written, "dota")
    by_id = {img.image_id: img for img in ds.images}
    first = by_id["airport_seed7.png"]
    captures = [by_id[f"{r.image_id}.png"] for r in revisits]
    print(f"1. Synthetic scene {first.image_id}: {first.meta.width}x{first.meta.height} px at "
          f"{first.meta.gsd_m} m/px, {first.count()} objects {first.class_counts()}")
    print(f"   written as DOTA labelTxt to {written} and read back")
    grid = TileGrid.for_image(first, TILE)
    counts = true_counts(grid, first.objects)
    print(f"   true count per {TILE}px tile ({grid.rows}x{grid.cols} tiles, sum "
          f"{counts.sum()}):")
    for row in counts:
        print("     " + " ".join(f"{c:3d}" for c in row))
    pic = save(first, out / "synthetic_scene.png", tile_size=TILE)
    print(f"   picture: {pic}\n")

    print("2. Revisits of one footprint (sub-tile shift, new light, noise, clouds):")
    for img in captures:
        fp = img.meta.footprint
        gx, gy = fp.pixel_to_ground(0, 0)
        print(f"   {img.image_id:22s} captured {img.meta.capture_time}  origin on the ground "
              f"({gx:8.1f}, {gy:8.1f}) m  {img.count():3d} objects {img.class_counts()}")
    print("   (counts differ where a shift moves objects across the frame edge)")
    print()

    root = real_dev_root(real_dev)
    if not root.is_dir():
        print(f"3. Real development data: {root} not found, skipped "
              "(set TARGETFUSE_REAL_DEV to its folder)")
        return 0
    print(f"3. Real development data in {root}:")
    for name, spec in REAL_DEV.items():
        real = load_real(name, root)
        parts = split_images(real.images, seed=0)
        split_text = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        print(f"   {name:16s} {len(real):3d} images {real.total():5d} objects "
              f"(expected {spec.expected_objects})  split: {split_text}")
        print(f"   {'':16s} per class: {real.class_counts()}")
    airbus = load_real("airbus_aircraft", root)
    busiest = max(airbus.images, key=lambda i: i.count())
    pic = save(busiest, out / "airbus_scene.png", tile_size=512, max_side=1600)
    grid = TileGrid.for_image(busiest, 512)
    per_tile = true_counts(grid, busiest.objects)
    unique, removed = merge_duplicates(busiest.objects)
    print(f"   busiest Airbus scene {busiest.image_id}: {busiest.count()} labels "
          f"({removed} of them duplicate boxes of the same aircraft: {len(unique)} aircraft); "
          f"per 512px tile: {int((per_tile == 0).sum())} of {len(grid)} tiles empty, max "
          f"{int(per_tile.max())} labels")
    print(f"   picture: {pic}")
    revs = revisit_real(busiest, n=2, seed=1)
    shifts = [np.round(r.meta.footprint.ground_to_pixel(0, 0), 1) for r in revs]
    print(f"   2 real revisits of it: {[r.count() for r in revs]} aircraft, pixel shifts "
          f"{[tuple(float(v) for v in s) for s in shifts]}\n")
    _count_with_shipped_pair(airbus, root)
    return 0


def _count_with_shipped_pair(airbus: Dataset, root: Path) -> None:
    """Count the held-out Airbus test scenes with the shipped aircraft pair."""
    import json
    import time

    from shared.model_bundle import MODELS_DIR, card_path

    split_file = MODELS_DIR / "splits" / "airbus_aircraft.json"
    if not card_path("aircraft", "ground").exists() or not split_file.exists():
        print("4. No shipped aircraft counters under models/: counting skipped")
        return
    try:
        from ground.counter import GroundCounter
    except ImportError:
        print("4. The ground counter needs torch (the ground install): counting skipped")
        return
    from onboard.counter import OnboardCounter

    onboard = OnboardCounter.shipped("aircraft", threads=1)
    ground = GroundCounter.shipped("aircraft", threads=2)
    test_ids = set(json.loads(split_file.read_text())["test"])
    scenes = [img for img in airbus.images if img.image_id in test_ids][:4]
    print("4. Shipped aircraft counters on held-out Airbus test scenes (2560x2560, 0.5 m):")
    print(f"   {'scene':10s} {'truth':>6s} {'onboard':>8s} {'ground':>8s}  tiles  "
          "mean confidence  onboard s  ground s")
    for img in scenes:
        pixels = img.load_pixels()
        t0 = time.perf_counter()
        on = onboard.count(pixels, img.meta.gsd_m)
        t1 = time.perf_counter()
        gr = ground.count(pixels, img.meta.gsd_m)
        t2 = time.perf_counter()
        truth = len(merge_duplicates([o for o in img.objects
                                      if o.class_name in set(ground.card.truth_classes)])[0])
        print(f"   {img.image_id[:8]:10s} {truth:6d} {on.outputs.total:8.1f} {gr.total:8.1f}  "
              f"{len(on.outputs.grid):5d}  {float(np.mean(on.confidence)):15.2f}  "
              f"{t1 - t0:9.2f}  {t2 - t1:8.2f}")

"""The real development datasets read as published (skips when the folder is absent)."""

import json
from pathlib import Path

import pytest

from lab.data.realdev import REAL_DEV, load_real
from lab.data.splits import infer_sequences, split_images
from shared.tile_grid import TileGrid, true_counts

pytestmark = pytest.mark.realdata


def test_airbus_totals(real_dev):
    ds = load_real("airbus_aircraft", real_dev)
    assert len(ds) == 75
    assert ds.class_counts() == {"Airplane": 2532, "Truncated_airplane": 93}
    assert ds.total() == 2625 == REAL_DEV["airbus_aircraft"].expected_objects
    assert all((i.meta.width, i.meta.height) == (2560, 2560) for i in ds.images)
    assert all(i.meta.gsd_m == 0.5 for i in ds.images)


def test_dota8_totals(real_dev):
    ds = load_real("dota8", real_dev)
    assert len(ds) == 8 and ds.total() == 133
    assert ds.class_counts()["ship"] == 105
    crowded = next(i for i in ds.images if "P0861" in i.image_id)
    assert crowded.count() == 110


def test_kit_totals_and_sequences(real_dev):
    ds = load_real("kit_cars", real_dev)
    assert len(ds) == 8 and ds.total() == 316
    parts = split_images(ds.images, {"train": 0.5, "test": 0.5}, seed=0)
    names = {k: sorted(i.image_id for i in v) for k, v in parts.items()}
    first = sorted(f"MOS{n}.png" for n in (74, 80, 86, 93))
    second = sorted(f"MOS{n}.png" for n in (155, 163, 171, 179))
    assert sorted(names.values()) == sorted([first, second])


@pytest.mark.parametrize("name", list(REAL_DEV))
def test_per_tile_truth_adds_up(real_dev, name):
    ds = load_real(name, real_dev)
    for img in ds.images:
        for tile in (256, 500):
            counts = true_counts(TileGrid.for_image(img, tile), img.objects)
            assert counts.sum() == img.count()


def test_new_sources_read_as_published(real_dev):
    gdit = load_real("gdit_aerial_airport", real_dev)
    assert len(gdit) == 338 and gdit.class_counts() == {"airplane": 4923}
    assert all(i.meta.gsd_m is None and (i.meta.width, i.meta.height) == (600, 600)
               for i in gdit.images)
    vedai = load_real("vedai_partial", real_dev)
    assert len(vedai) == 96 and vedai.class_counts() == {
        "pickup": 62, "car": 39, "tractor": 35, "camping car": 23, "truck": 17, "van": 7,
        "other": 6, "boat": 6}
    assert all(i.meta.gsd_m == 0.125 for i in vedai.images)
    drone = load_real("aerial_maritime_drone", real_dev)
    assert len(drone) == 49 and drone.class_counts() == {
        "boat": 30, "car": 16, "dock": 277, "jetski": 79, "lift": 255}


_SPLITS = Path(__file__).resolve().parents[3] / "models" / "splits"


@pytest.mark.parametrize("name", list(REAL_DEV))
def test_committed_split_holds_every_image_once(real_dev, name):
    split = json.loads((_SPLITS / f"{name}.json").read_text())
    ids = [i for part in split.values() for i in part]
    assert sorted(ids) == sorted(i.image_id for i in load_real(name, real_dev).images)


@pytest.mark.parametrize("name", ["kit_cars", "ships_google_earth", "aerial_maritime_drone",
                                  "vedai_partial"])
def test_committed_split_never_divides_a_group(real_dev, name):
    """Runs of numbered frames (and, for VEDAI, tiles cut side by side) stay on one side.
    GDIT's and NWPU's groups are ORB look-alikes: too slow to recompute here."""
    from lab.data.lookalike import lookalike_groups

    split = json.loads((_SPLITS / f"{name}.json").read_text())
    owner = {i: part for part, members in split.items() for i in members}
    images = load_real(name, real_dev).images
    if name == "vedai_partial":
        groups = lookalike_groups(images, orb=False, adjacent=True)
    else:
        groups = infer_sequences([i.image_id for i in images])
    parts: dict[str, set[str]] = {}
    for image_id, group in groups.items():
        parts.setdefault(group, set()).add(owner[image_id])
    assert {g: p for g, p in parts.items() if len(p) > 1} == {}
    assert len(parts) < len(images)  # there are groups to keep


def test_new_sources_val_and_test_hold_objects_of_their_labelled_classes(real_dev):
    from lab.data.classes import load_class_map

    cmap = load_class_map()
    for name in ("gdit_aerial_airport", "vedai_partial", "aerial_maritime_drone"):
        split = json.loads((_SPLITS / f"{name}.json").read_text())
        by_id = {i.image_id: i for i in load_real(name, real_dev).images}
        # Classes the source holds (a class labelled as known-absent, such as a marina's
        # aircraft, has none anywhere).
        held = [c for c in cmap.sources[name].labelled
                if sum(cmap.counts(i)[c] for i in by_id.values()) > 0]
        assert held
        for part in ("val", "test"):
            for cls in held:
                assert sum(cmap.counts(by_id[i])[cls] for i in split[part]) > 0, (name, part, cls)


def test_real_scene_revisits_keep_interior_objects_in_place(real_dev):
    import numpy as np

    from lab.synth import revisit_real

    image = load_real("airbus_aircraft", real_dev).images[0]
    interior = [o for o in image.objects if min(o.box[:2]) > 30 and max(o.box[2:]) < 2530]
    for rev in revisit_real(image, n=2, seed=4, max_shift_px=24):
        assert rev.meta.sequence == image.image_id  # splits keep revisits with their source
        dx, dy = rev.meta.footprint.ground_to_pixel(0, 0)  # where the original's origin went
        seen = np.array([o.centre for o in rev.objects])
        for obj in interior:
            expected = np.array(obj.centre) + (dx, dy)
            assert np.min(np.linalg.norm(seen - expected, axis=1)) < 1e-6
        assert rev.load_pixels().shape == image.load_pixels().shape

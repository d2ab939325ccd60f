"""The real development datasets read as published (skips when the folder is absent)."""

import pytest

from lab.data.realdev import REAL_DEV, load_real
from lab.data.splits import split_images
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

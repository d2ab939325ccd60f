"""The real development datasets read as published (skips when the folder is absent)."""

import pytest

from shared.realdev import REAL_DEV, load_real
from shared.splits import split_images
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

import numpy as np
import pytest

from lab.training.density import density_map, object_mask, sum_pool
from shared.annotations import ObjectAnnotation


def _box(x0, y0, x1, y1):
    return ObjectAnnotation.from_box("a", x0, y0, x1, y1)


def test_density_sums_to_count_even_at_the_border():
    objs = [_box(10, 10, 30, 30), _box(-5, 40, 7, 60), _box(90, 90, 100, 100)]
    d = density_map(objs, 100, 100)
    assert d.sum() == pytest.approx(3, abs=1e-4)
    assert d.dtype == np.float32 and (d >= 0).all()


def test_sigma_grows_with_object_size_and_scale_shrinks_the_map():
    small = density_map([_box(40, 40, 50, 50)], 100, 100)
    large = density_map([_box(20, 20, 80, 80)], 100, 100)
    assert small.max() > 4 * large.max()  # the same mass spread wider
    half = density_map([_box(20, 20, 80, 80)], 50, 50, scale=0.5)
    assert half.sum() == pytest.approx(1, abs=1e-4)
    assert np.unravel_index(half.argmax(), half.shape) in {(24, 24), (24, 25), (25, 24),
                                                            (25, 25)}


def test_sum_pool_keeps_the_integral():
    rng = np.random.default_rng(0)
    d = rng.random((30, 22)).astype(np.float32)
    pooled = sum_pool(d, 4)
    assert pooled.shape == (8, 6)
    assert pooled.sum() == pytest.approx(d.sum(), rel=1e-5)


def test_mask_fills_polygons():
    m = object_mask([_box(10, 10, 20, 30)], 50, 50)
    assert int(m.sum()) == pytest.approx(200, abs=25)
    assert m[20, 15] == 1 and m[5, 5] == 0
    half = object_mask([_box(10, 10, 20, 30)], 25, 25, scale=0.5)
    assert int(half.sum()) == pytest.approx(50, abs=12)

import numpy as np
import pytest

from shared.annotations import ObjectAnnotation
from shared.tile_grid import TileGrid, objects_in_tile, true_counts


def _dot(x, y, cls="a"):
    return ObjectAnnotation.from_box(cls, x - 1, y - 1, x + 1, y + 1)


def test_partial_edge_tiles_cover_every_pixel_once():
    grid = TileGrid(250, 130, 100)
    assert (grid.rows, grid.cols, len(grid)) == (2, 3, 6)
    cover = np.zeros((130, 250), int)
    for t in grid:
        cover[t.y0:t.y1, t.x0:t.x1] += 1
    assert (cover == 1).all()
    last = grid.tile(5)
    assert (last.row, last.col, last.x0, last.y0, last.x1, last.y1) == (1, 2, 200, 100, 250, 130)
    assert (last.width, last.height) == (50, 30)


def test_counts_by_centre_sum_to_total_with_edges_and_outside():
    grid = TileGrid(250, 130, 100)
    objs = [_dot(10, 10), _dot(99.5, 10), _dot(100, 10),  # on the edge: right tile
            _dot(249.5, 129.5), _dot(260, 140),  # just outside the scene: edge tile
            _dot(150, 50, "b"), _dot(-3, 110)]
    counts = true_counts(grid, objs)
    assert counts.shape == (2, 3)
    assert counts.tolist() == [[2, 2, 0], [1, 0, 2]]
    assert counts.sum() == len(objs)
    assert true_counts(grid, objs, classes={"b"}).tolist() == [[0, 1, 0], [0, 0, 0]]


def test_objects_in_tile_are_tile_local():
    grid = TileGrid(200, 200, 100)
    (obj,) = objects_in_tile(grid, [_dot(150, 120), _dot(20, 20)], index=3)
    assert obj.centre == pytest.approx((50, 20))


def test_crop_and_validation():
    pixels = np.arange(250 * 130 * 3, dtype=np.uint32).reshape(130, 250, 3)
    grid = TileGrid(250, 130, 100)
    assert grid.crop(pixels, 5).shape == (30, 50, 3)
    assert np.array_equal(grid.crop(pixels, 4), pixels[100:130, 100:200])
    with pytest.raises(IndexError):
        grid.tile(6)
    with pytest.raises(ValueError):
        TileGrid(10, 10, 0)

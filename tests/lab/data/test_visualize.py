import numpy as np
import pytest

from lab.data.visualize import draw, save
from shared.annotations import AnnotatedImage, ImageMeta, ObjectAnnotation
from shared.imageio import read_rgb


def _image(w=400, h=300):
    objs = [ObjectAnnotation.from_box("car", 40, 40, 80, 60),
            ObjectAnnotation.from_box("bus", 250, 200, 300, 240)]
    return AnnotatedImage(ImageMeta("x", w, h), objs, pixels=np.zeros((h, w, 3), np.uint8))


def test_draws_polygons_grid_and_keeps_size():
    img = _image()
    out = draw(img, tile_size=100)
    assert out.shape == (300, 400, 3)
    assert out[40, 60].any()  # the top edge of the car box is drawn
    assert out[150, 100].any()  # a grid line
    assert not out[150, 150].any()  # inside a tile, away from everything: untouched
    assert not img.pixels.any()  # the source pixels are not drawn on


def test_large_images_are_downscaled():
    out = draw(_image(4000, 1000), max_side=800)
    assert out.shape == (200, 800, 3)


def test_save_writes_png_only(tmp_path):
    path = save(_image(), tmp_path / "a.png", tile_size=128)
    assert read_rgb(path).shape == (300, 400, 3)
    with pytest.raises(ValueError, match="PNG"):
        save(_image(), tmp_path / "a.jpg")

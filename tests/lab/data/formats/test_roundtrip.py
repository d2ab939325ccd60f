"""Every writer's output is read back by its reader with nothing the format holds lost."""

import numpy as np
import pytest

from lab.data.formats import FORMATS, get_format, read_dataset, write_dataset
from shared.annotations import AnnotatedImage, Dataset, Footprint, ImageMeta, ObjectAnnotation


def _rotated_rect(cx, cy, w, h, deg):
    a = np.deg2rad(deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)])
    return corners @ rot.T + (cx, cy)


# VEDAI has fixed class codes: its round trip uses VEDAI names for the three classes.
NAMES = {"vedai": {"aircraft": "plane", "ship": "boat", "vehicle": "camping car"}}


def _dataset(fmt: str = "") -> Dataset:
    names = NAMES.get(fmt, {})
    rng = np.random.default_rng(3)
    images = []
    for k in range(2):
        meta = ImageMeta(f"scene{k}", 160, 120, gsd_m=0.5,
                         footprint=Footprint((100.0 * k, 0.5, 0, 500.0, 0, -0.5)),
                         capture_time=f"2026-01-0{k + 1}T10:00:00Z", sequence="fp1")
        objs = [ObjectAnnotation(names.get(cls, cls), _rotated_rect(cx, cy, 16, 8, deg))
                for cls, cx, cy, deg in [("aircraft", 40, 30, 30), ("ship", 100, 80, 125),
                                         ("vehicle", 20 + 50 * k, 100, 270)]]
        pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        images.append(AnnotatedImage(meta, objs, pixels=pixels))
    return Dataset(images, [names.get(c, c) for c in ("aircraft", "ship", "vehicle")])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip(tmp_path, fmt):
    original = _dataset(fmt)
    write_dataset(original, tmp_path / fmt, fmt)
    back = read_dataset(tmp_path / fmt, fmt)
    assert len(back) == 2
    ext = get_format(fmt).default_image_ext
    for src, img in zip(original.images, back.images, strict=True):
        assert img.image_id == f"{src.image_id}{ext}"
        assert (img.meta.width, img.meta.height) == (160, 120)
        assert img.meta.gsd_m == 0.5 and img.meta.sequence == "fp1"
        assert img.meta.footprint == src.meta.footprint
        assert img.meta.capture_time == src.meta.capture_time
        assert [o.class_name for o in img.objects] == [o.class_name for o in src.objects]
        for a, b in zip(src.objects, img.objects, strict=True):
            assert b.centre == pytest.approx(a.centre, abs=0.02)
            if fmt in ("airbus-csv", "dota", "yolo-obb", "vedai"):  # formats that keep the outline
                assert b.polygon == pytest.approx(a.polygon, abs=0.02)
            else:
                assert b.box == pytest.approx(a.box, abs=0.02)
        assert img.load_pixels().shape == (120, 160, 3)
    if ext == ".png":
        assert np.array_equal(back.images[0].load_pixels(), original.images[0].pixels)


def test_non_quadrilateral_polygons_become_their_rotated_rectangle(tmp_path):
    hexagon = np.array([(np.cos(t) * 10 + 50, np.sin(t) * 10 + 40)
                        for t in np.linspace(0, 2 * np.pi, 7)[:-1]])
    img = AnnotatedImage(ImageMeta("h", 100, 80), [ObjectAnnotation("ship", hexagon)],
                         pixels=np.zeros((80, 100, 3), np.uint8))
    for fmt in ("dota", "yolo-obb"):
        write_dataset(Dataset([img], ["ship"]), tmp_path / fmt, fmt)
        (obj,) = read_dataset(tmp_path / fmt, fmt).images[0].objects
        assert len(obj.polygon) == 4
        assert obj.centre == pytest.approx((50, 40), abs=0.05)


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format 'coco'"):
        get_format("coco")


def test_writer_rejects_class_outside_names(tmp_path):
    ds = _dataset()
    ds.class_names = ["aircraft"]
    with pytest.raises(ValueError, match="not among"):
        write_dataset(ds, tmp_path / "y", "yolo")
    with pytest.raises(ValueError, match="vedai: no class code for"):
        write_dataset(_dataset(), tmp_path / "v", "vedai")

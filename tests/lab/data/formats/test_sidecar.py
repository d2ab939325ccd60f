import json

import pytest

from lab.data.formats import AnnotationFormatError, read_dataset


def _yolo(tmp_path, make_image):
    (tmp_path / "classes.names").write_text("car\n")
    make_image(tmp_path / "images" / "a.png", 40, 30)
    return tmp_path


def test_sidecar_fills_what_the_format_cannot_say(tmp_path, make_image):
    root = _yolo(tmp_path, make_image)
    (root / "images_meta.json").write_text(json.dumps({
        "dataset": {"gsd_m": 0.3},
        "images": {"a.png": {"sequence": "s1", "capture_time": "2026-01-01T00:00:00Z",
                             "footprint": {"geotransform": [5, 0.3, 0, 9, 0, -0.3]}}}}))
    (img,) = read_dataset(root, "yolo").images
    assert img.meta.gsd_m == 0.3 and img.meta.sequence == "s1"
    assert img.meta.footprint.pixel_to_ground(10, 10) == pytest.approx((8, 6))


def test_broken_sidecar_is_named(tmp_path, make_image):
    root = _yolo(tmp_path, make_image)
    (root / "images_meta.json").write_text('{"images": {\n  "a.png": {,}\n}}')
    with pytest.raises(AnnotationFormatError, match=r"images_meta.json:2: invalid JSON"):
        read_dataset(root, "yolo")
    (root / "images_meta.json").write_text('{"images": {"a.png": {"footprint": '
                                           '{"geotransform": [0, 0, 0, 0, 0, 0]}}}}')
    with pytest.raises(AnnotationFormatError, match="bad footprint for a.png: .*singular"):
        read_dataset(root, "yolo")
    (root / "images_meta.json").write_text('{"images": {"a.png": {"gsd_m": -1}}}')
    with pytest.raises(AnnotationFormatError, match="bad metadata for a.png: gsd"):
        read_dataset(root, "yolo")

import pytest

from lab.data.formats import AnnotationFormatError, read_dataset


def _dataset(tmp_path, make_image, label: str):
    make_image(tmp_path / "images" / "P1.png", 120, 90)
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "labelTxt" / "P1.txt").write_text(label)
    return tmp_path


def test_reads_header_polygons_and_difficult(tmp_path, make_image):
    label = ("imagesource:GoogleEarth\ngsd:0.146\n"
             "10 10 30 10 30 20 10 20 small-vehicle 0\n"
             "50 50 70 55 65 75 45 70 ship 1\n")
    ds = read_dataset(_dataset(tmp_path, make_image, label), "dota")
    (img,) = ds.images
    assert img.meta.gsd_m == pytest.approx(0.146)
    assert img.meta.source == "GoogleEarth"
    car, ship = img.objects
    assert car.class_name == "small-vehicle" and not car.difficult
    assert ship.difficult
    assert car.centre == pytest.approx((20, 15))
    assert ship.polygon[1].tolist() == [70, 55]
    assert ds.class_names == ["ship", "small-vehicle"]


def test_null_gsd_and_missing_difficult(tmp_path, make_image):
    label = "imagesource:GF2\ngsd:null\n10 10 30 10 30 20 10 20 plane\n"
    (img,) = read_dataset(_dataset(tmp_path, make_image, label), "dota").images
    assert img.meta.gsd_m is None and img.count() == 1 and not img.objects[0].difficult


def test_gsd_override_only_fills_unknown(tmp_path, make_image):
    label = "gsd:0.3\n10 10 30 10 30 20 10 20 plane 0\n"
    (img,) = read_dataset(_dataset(tmp_path, make_image, label), "dota", gsd_m=1.0).images
    assert img.meta.gsd_m == pytest.approx(0.3)


@pytest.mark.parametrize("label, line, message", [
    ("gsd:abc\n", 1, "gsd is not a number"),
    ("gsd:-2\n", 1, "gsd must be > 0"),
    ("imagesource:x\n10 10 30 10 30 20 plane 0\n", 2, "10 fields"),
    ("10 10 30 10 30 20 10 20 plane 2\n", 1, "difficult flag"),
    ("10 10 30 10 30 20 10 y plane 0\n", 1, "coordinate 8 is not a number"),
])
def test_broken_lines(tmp_path, make_image, label, line, message):
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(_dataset(tmp_path, make_image, label), "dota")
    assert f"P1.txt:{line}:" in str(err.value)

import numpy as np
import pytest

from lab.data.formats import AnnotationFormatError, read_dataset

# cx cy angle class is_contained is_occluded x1 x2 x3 x4 y1 y2 y3 y4
CAR = "20 15 0.0 1 1 0 10 30 30 10 10 10 20 20\n"
CAMPER = "60 50 0.5 5 0 1 50 70 65 45 45 50 60 55\n"


def _dataset(tmp_path, make_image, label: str):
    make_image(tmp_path / "images" / "00000001.jpg", 120, 90)
    make_image(tmp_path / "images" / "00000002.jpg", 120, 90)  # no annotation file
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "00000001.txt").write_text(label)
    return tmp_path


def test_reads_corners_codes_and_flags(tmp_path, make_image):
    ds = read_dataset(_dataset(tmp_path, make_image, CAR + "\n" + CAMPER), "vedai", gsd_m=0.125)
    first, second = ds.images
    assert first.image_id == "00000001.jpg" and second.objects == []
    car, camper = first.objects
    assert car.class_name == "car" and camper.class_name == "camping car"
    np.testing.assert_allclose(car.polygon, [[10, 10], [30, 10], [30, 20], [10, 20]])
    assert camper.polygon[2].tolist() == [65, 60]
    assert not car.truncated and not car.difficult
    assert camper.truncated and camper.difficult  # not contained, occluded
    assert ds.class_names == ["camping car", "car"]
    assert first.meta.gsd_m == 0.125


@pytest.mark.parametrize("label, line, message", [
    ("20 15 0.0 1 1 0 10 30 30 10 10 10 20\n", 1, "14 fields"),
    (CAR + "20 15 0.0 3 1 0 10 30 30 10 10 10 20 20\n", 2, "unknown VEDAI class code 3"),
    ("20 15 0.0 car 1 0 10 30 30 10 10 10 20 20\n", 1, "class code is not an integer"),
    ("20 15 0.0 1 2 0 10 30 30 10 10 10 20 20\n", 1, "is_contained must be 0 or 1"),
    ("20 15 0.0 1 1 0 10 30 30 10 10 10 20 y\n", 1, "y4 is not a number"),
    ("20 15 zero 1 1 0 10 30 30 10 10 10 20 20\n", 1, "angle is not a number"),
    ("20 15 0.0 1 1 0 10 30 30 10 10 10 10 10\n", 1, "no area"),
    ("20 15 0.0 1 1 0 10 30 30 900 10 10 20 20\n", 1, "far outside"),
])
def test_broken_lines(tmp_path, make_image, label, line, message):
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(_dataset(tmp_path, make_image, label), "vedai")
    assert str(err.value).startswith(f"{tmp_path / 'annotations' / '00000001.txt'}:{line}:")


def test_missing_annotation_folder(tmp_path, make_image):
    make_image(tmp_path / "images" / "a.jpg")
    with pytest.raises(FileNotFoundError, match="annotations"):
        read_dataset(tmp_path, "vedai")

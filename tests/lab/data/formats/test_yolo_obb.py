import numpy as np
import pytest

from lab.data.formats import AnnotationFormatError, read_dataset

YAML = "path: .\nnames:\n  0: plane\n  1: ship\n  2: large vehicle\n"


def _dataset(tmp_path, make_image, label: str, yaml_text: str = YAML):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.yaml").write_text(yaml_text)
    make_image(tmp_path / "images" / "train" / "p1.jpg", 100, 200)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "p1.txt").write_text(label)
    return tmp_path


def test_reads_corners_and_mixed_box_lines(tmp_path, make_image):
    label = ("1 0.1 0.1 0.3 0.1 0.3 0.2 0.1 0.2\n"
             "2 0.5 0.5 0.2 0.1\n")  # a plain box line, as DOTA8 has
    ds = read_dataset(_dataset(tmp_path, make_image, label), "yolo-obb")
    (img,) = ds.images
    ship, truck = img.objects
    assert ship.class_name == "ship" and truck.class_name == "large vehicle"
    np.testing.assert_allclose(ship.polygon, [[10, 20], [30, 20], [30, 40], [10, 40]])
    assert truck.box == pytest.approx((40, 90, 60, 110))
    assert ds.class_names == ["plane", "ship", "large vehicle"]


def test_names_as_list(tmp_path, make_image):
    ds = read_dataset(_dataset(tmp_path, make_image, "1 0.1 0.1 0.3 0.1 0.3 0.2 0.1 0.2\n",
                               "names: [plane, ship]\n"), "yolo-obb")
    assert ds.images[0].objects[0].class_name == "ship"


@pytest.mark.parametrize("label, line, message", [
    ("1 0.1 0.1 0.3 0.1 0.3 0.2 0.1\n", 1, "expected 5 or 9 fields"),
    ("\n\n9 0.1 0.1 0.3 0.1 0.3 0.2 0.1 0.2\n", 3, "class index 9"),
    ("1 0.1 0.1 0.3 0.1 0.3 0.2 0.1 nan\n", 1, "not finite"),
])
def test_broken_lines(tmp_path, make_image, label, line, message):
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(_dataset(tmp_path, make_image, label), "yolo-obb")
    assert f"p1.txt:{line}:" in str(err.value)


def test_bad_yaml(tmp_path, make_image):
    with pytest.raises(AnnotationFormatError, match="names"):
        read_dataset(_dataset(tmp_path / "a", make_image, "", "path: .\n"), "yolo-obb")
    with pytest.raises(AnnotationFormatError, match=r"d.yaml:\d+: invalid YAML"):
        read_dataset(_dataset(tmp_path / "b", make_image, "", "names: [a, b\n  c: d:\n"),
                     "yolo-obb")

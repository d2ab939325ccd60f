import pytest

from shared.formats import AnnotationFormatError, read_dataset


def _dataset(tmp_path, make_image, label: str, names="car\ntruck\n"):
    (tmp_path / "classes.names").write_text(names)
    make_image(tmp_path / "images" / "f1.png", 200, 100)
    make_image(tmp_path / "images" / "f2.png", 200, 100)  # no label file: background
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "f1.txt").write_text(label)
    return tmp_path


def test_reads_boxes_in_pixels(tmp_path, make_image):
    ds = read_dataset(_dataset(tmp_path, make_image, "0 0.5 0.5 0.1 0.2\n1 0.25 0.75 0.2 0.1\n"),
                      "yolo")
    f1, f2 = ds.images
    assert f1.image_id == "f1.png" and f2.objects == []
    car, truck = f1.objects
    assert car.class_name == "car" and truck.class_name == "truck"
    assert car.box == pytest.approx((90, 40, 110, 60))
    assert truck.centre == pytest.approx((50, 75))
    assert ds.class_names == ["car", "truck"]


def test_split_subfolders(tmp_path, make_image):
    (tmp_path / "classes.names").write_text("car\n")
    for split in ("train", "val"):
        make_image(tmp_path / "images" / split / "x.png", 50, 50)
        (tmp_path / "labels" / split).mkdir(parents=True)
        (tmp_path / "labels" / split / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 2)
    ds = read_dataset(tmp_path, "yolo")
    assert [i.image_id for i in ds.images] == ["train/x.png", "val/x.png"]
    assert ds.total() == 4


@pytest.mark.parametrize("label, line, message", [
    ("0 0.5 0.5 0.1\n", 1, "expected 5 fields"),
    ("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n", 2, "class index 7"),
    ("0 0.5 0.5 0.1 zero\n", 1, "not a number"),
    ("x 0.5 0.5 0.1 0.1\n", 1, "not an integer"),
    ("0 0.5 0.5 0 0.1\n", 1, "must be > 0"),
    ("0 5.5 0.5 0.1 0.1\n", 1, "far outside"),
])
def test_broken_lines(tmp_path, make_image, label, line, message):
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(_dataset(tmp_path, make_image, label), "yolo")
    assert str(err.value).startswith(f"{tmp_path / 'labels' / 'f1.txt'}:{line}:")


def test_missing_names_file(tmp_path, make_image):
    make_image(tmp_path / "images" / "a.png")
    with pytest.raises(FileNotFoundError, match="classes.names"):
        read_dataset(tmp_path, "yolo")

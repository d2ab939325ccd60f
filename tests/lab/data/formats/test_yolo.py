import pytest

from lab.data.formats import AnnotationFormatError, read_dataset


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
    with pytest.raises(FileNotFoundError, match="classes.names or dataset YAML"):
        read_dataset(tmp_path, "yolo")


def test_names_from_a_data_yaml_when_there_is_no_names_file(tmp_path, make_image):
    # Roboflow / Ultralytics exports: names in data.yaml, one of them with a space
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\n\n"
                                        "nc: 3\nnames: ['boat', 'car', 'jet ski']")
    make_image(tmp_path / "images" / "valid__DJI_0001.jpg", 200, 100)
    make_image(tmp_path / "images" / "train__DJI_0002.jpg", 200, 100)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "valid__DJI_0001.txt").write_text("2 0.5 0.5 0.1 0.2\n")
    (tmp_path / "labels" / "train__DJI_0002.txt").write_text("0 0.25 0.75 0.2 0.1\n"
                                                            "1 0.5 0.5 0.1 0.1\n")
    ds = read_dataset(tmp_path, "yolo")
    assert ds.class_names == ["boat", "car", "jet ski"]
    assert ds.class_counts() == {"boat": 1, "car": 1, "jet ski": 1}
    jet = ds.images[1].objects[0]
    assert jet.class_name == "jet ski" and jet.box == pytest.approx((90, 40, 110, 60))
    (tmp_path / "labels" / "valid__DJI_0001.txt").write_text("3 0.5 0.5 0.1 0.2\n")
    with pytest.raises(AnnotationFormatError, match="class index 3 outside 0..2"):
        read_dataset(tmp_path, "yolo")
    (tmp_path / "data.yaml").write_text("nc: 3\n")
    with pytest.raises(AnnotationFormatError, match=r"data.yaml: no 'names'"):
        read_dataset(tmp_path, "yolo")

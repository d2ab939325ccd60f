import pytest

from lab.data.formats import AnnotationFormatError, read_dataset

HEADER = "id,image_id,geometry,class\n"


def _dataset(tmp_path, make_image, rows: str):
    make_image(tmp_path / "images" / "a.jpg", 100, 80)
    make_image(tmp_path / "images" / "b.jpg", 100, 80)
    (tmp_path / "annotations.csv").write_text(HEADER + rows)
    return tmp_path


def test_reads_polygons_classes_and_empty_images(tmp_path, make_image):
    rows = ('1,a.jpg,"[(10, 20), (30, 20), (30, 40), (10, 40), (10, 20)]",Airplane\n'
            '2,a.jpg,"[(0, 0), (5, 0), (5, 6), (0, 6), (0, 0)]",Truncated_airplane\n')
    ds = read_dataset(_dataset(tmp_path, make_image, rows), "airbus-csv")
    by_id = {img.image_id: img for img in ds.images}
    assert set(by_id) == {"a.jpg", "b.jpg"}
    a = by_id["a.jpg"]
    assert (a.meta.width, a.meta.height) == (100, 80)
    assert [o.class_name for o in a.objects] == ["Airplane", "Truncated_airplane"]
    assert a.objects[0].box == (10, 20, 30, 40)
    assert a.objects[0].centre == pytest.approx((20, 30))
    assert a.objects[1].truncated and not a.objects[0].truncated
    assert by_id["b.jpg"].objects == []
    assert ds.class_names == ["Airplane", "Truncated_airplane"]


@pytest.mark.parametrize("rows, line, message", [
    ('1,a.jpg,"[(1, 2), (3, x), (5, 6)]",Airplane\n', 2, "malformed point|non-numeric"),
    ('1,a.jpg,"[(1, 2), (3, 4)]",Airplane\n', 2, "at least 3"),
    ('1,a.jpg,"(1, 2), (3, 4), (5, 6)",Airplane\n', 2, "not a list"),
    ('1,zz.jpg,"[(1, 2), (3, 4), (5, 6)]",Airplane\n', 2, "zz.jpg.*not found"),
    ('1,a.jpg,"[(1, 2), (3, 4), (5, 6)]",Airplane\n2,a.jpg\n', 3, "expected 4 fields"),
    ('1,a.jpg,"[(1, 2), (3, 4), (500, 6)]",Airplane\n', 2, "far outside"),
])
def test_broken_rows_name_file_and_line(tmp_path, make_image, rows, line, message):
    root = _dataset(tmp_path, make_image, rows)
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(root, "airbus-csv")
    assert err.value.line == line
    assert f"annotations.csv:{line}:" in str(err.value)


def test_bad_header_and_missing_csv(tmp_path, make_image):
    make_image(tmp_path / "images" / "a.jpg")
    with pytest.raises(FileNotFoundError, match="annotations.csv"):
        read_dataset(tmp_path, "airbus-csv")
    (tmp_path / "annotations.csv").write_text("a,b,c\n")
    with pytest.raises(AnnotationFormatError, match="header"):
        read_dataset(tmp_path, "airbus-csv")

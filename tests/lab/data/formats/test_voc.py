import pytest

from lab.data.formats import AnnotationFormatError, read_dataset

XML = """<?xml version="1.0"?>
<annotation>
  <filename>a.jpg</filename>
  <size><width>64</width><height>48</height><depth>3</depth></size>
  <object>
    <name>car</name><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>11</xmin><ymin>21</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>
  </object>
  <object>
    <name>bus</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>9</ymax></bndbox>
  </object>
</annotation>
"""


def _dataset(tmp_path, make_image, xml: str):
    make_image(tmp_path / "JPEGImages" / "a.jpg", 64, 48)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(xml)
    return tmp_path


def test_reads_boxes_one_based_inclusive(tmp_path, make_image):
    ds = read_dataset(_dataset(tmp_path, make_image, XML), "voc")
    (img,) = ds.images
    car, bus = img.objects
    # xmin=11 (1-based) is the left edge of pixel 10; xmax=30 inclusive ends at 30.
    assert car.box == (10, 20, 30, 40)
    assert car.truncated and not car.difficult
    assert bus.box == (0, 0, 5, 9)
    assert ds.class_names == ["bus", "car"]


@pytest.mark.parametrize("old, new, line, message", [
    ("<xmin>11</xmin>", "<xmin>eleven</xmin>", 7, "<xmin> is not a number"),
    ("<ymax>40</ymax>", "", 7, "<ymax> missing"),
    ("<name>bus</name>", "", 9, "no <name>"),
    ("</annotation>", "", 14, "invalid XML"),
    ("<size><width>64</width>", "<size><width>x</width>", 4, "not an integer"),
])
def test_broken_files_name_the_line(tmp_path, make_image, old, new, line, message):
    with pytest.raises(AnnotationFormatError, match=message) as err:
        read_dataset(_dataset(tmp_path, make_image, XML.replace(old, new)), "voc")
    assert f"a.xml:{line}:" in str(err.value)

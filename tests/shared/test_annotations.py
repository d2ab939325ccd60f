import numpy as np
import pytest

from shared.annotations import AnnotatedImage, Dataset, Footprint, ImageMeta, ObjectAnnotation


def test_box_polygon_centre_area():
    obj = ObjectAnnotation.from_box("car", 10, 20, 30, 60)
    assert obj.box == (10, 20, 30, 60)
    assert obj.centre == pytest.approx((20, 40))
    assert obj.area == pytest.approx(800)
    assert obj.size_px == 40


def test_closed_ring_keeps_each_corner_once():
    ring = [(0, 0), (4, 0), (4, 2), (0, 2), (0, 0)]
    obj = ObjectAnnotation("plane", np.array(ring))
    assert len(obj.polygon) == 4
    assert obj.centre == pytest.approx((2, 1))


def test_centre_is_area_centroid_not_vertex_mean():
    # An L-shape: the vertex mean and the area centroid differ.
    poly = np.array([(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)], dtype=float)
    obj = ObjectAnnotation("x", poly)
    # Two rectangles: 4x1 (centre 2, 0.5) and 1x3 (centre 0.5, 2.5), areas 4 and 3.
    assert obj.centre == pytest.approx(((4 * 2 + 3 * 0.5) / 7, (4 * 0.5 + 3 * 2.5) / 7))


def test_rotated_square_centre():
    angle = np.deg2rad(33)
    corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=float) * 5
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    obj = ObjectAnnotation("ship", corners @ rot.T + (100, 50))
    assert obj.centre == pytest.approx((100, 50))


@pytest.mark.parametrize("poly", [[(0, 0), (1, 1)], [(0, 0), (1, 0), (np.nan, 1)]])
def test_bad_polygons_raise(poly):
    with pytest.raises(ValueError):
        ObjectAnnotation("x", np.array(poly, dtype=float))


def test_empty_box_and_class_raise():
    with pytest.raises(ValueError, match="empty box"):
        ObjectAnnotation.from_box("x", 5, 5, 5, 9)
    with pytest.raises(ValueError, match="class name"):
        ObjectAnnotation.from_box("", 0, 0, 1, 1)


def test_footprint_round_trip_and_shift():
    fp = Footprint((1000.0, 0.5, 0.0, 2000.0, 0.0, -0.5))
    assert fp.pixel_to_ground(10, 20) == pytest.approx((1005, 1990))
    assert fp.ground_to_pixel(1005, 1990) == pytest.approx((10, 20))
    moved = fp.shifted(4, -6)
    # The same ground point seen from the shifted image sits 4 px left and 6 px lower.
    assert moved.ground_to_pixel(*fp.pixel_to_ground(10, 20)) == pytest.approx((6, 26))
    assert Footprint.from_dict(fp.to_dict()) == fp
    with pytest.raises(ValueError, match="singular"):
        Footprint((0, 0, 0, 0, 0, 0))


def test_meta_validation_and_pixels_must_match():
    with pytest.raises(ValueError):
        ImageMeta("a", 0, 10)
    with pytest.raises(ValueError, match="gsd"):
        ImageMeta("a", 10, 10, gsd_m=-1)
    meta = ImageMeta("a", 8, 6)
    with pytest.raises(ValueError, match="metadata says"):
        AnnotatedImage(meta, [], pixels=np.zeros((8, 6, 3), np.uint8))
    img = AnnotatedImage(meta, [], pixels=np.zeros((6, 8, 3), np.uint8))
    assert img.load_pixels().shape == (6, 8, 3)
    with pytest.raises(ValueError, match="neither pixels nor a path"):
        AnnotatedImage(meta, []).load_pixels()


def test_counts():
    objs = [ObjectAnnotation.from_box(c, 0, 0, 2, 2) for c in ("a", "b", "a")]
    img = AnnotatedImage(ImageMeta("i", 10, 10), objs)
    assert img.class_counts() == {"a": 2, "b": 1}
    assert img.count({"a"}) == 2
    ds = Dataset([img, img], ["a", "b"])
    assert ds.total() == 6 and ds.class_counts() == {"a": 4, "b": 2}

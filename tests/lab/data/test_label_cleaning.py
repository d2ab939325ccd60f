import pytest

from lab.data.label_cleaning import merge_duplicates
from shared.annotations import ObjectAnnotation


def _box(x, y, w=40, h=30, cls="Airplane"):
    return ObjectAnnotation.from_box(cls, x, y, x + w, y + h)


def test_duplicates_are_merged_and_neighbours_kept():
    objs = [_box(0, 0), _box(3, 2), _box(45, 0), _box(100, 100), _box(102, 101), _box(104, 99)]
    kept, removed = merge_duplicates(objs)
    assert removed == 3
    assert [o.box[:2] for o in kept] == [(0, 0), (45, 0), (100, 100)]


def test_disabled_and_bad_threshold():
    objs = [_box(0, 0), _box(1, 1)]
    assert merge_duplicates(objs, 0) == (objs, 0)
    with pytest.raises(ValueError):
        merge_duplicates(objs, 1.0)


@pytest.mark.realdata
def test_airbus_duplicates(real_dev):
    from lab.data.realdev import load_real

    removed = {}
    for img in load_real("airbus_aircraft", real_dev).images:
        _, n = merge_duplicates(img.objects)
        if n:
            removed[img.image_id[:8]] = n
    # Five scenes carry a second box for (nearly) every aircraft.
    assert sorted(removed) == ["1e7e0450", "48ef8e15", "7635d63c", "ca7b1077", "d9399a45"]
    assert sum(removed.values()) == 127

"""The class map: every name of every real-dev source is decided, labelling records per
source, and the counts per class the sources' READMEs state."""

import json

import numpy as np
import pytest

from lab.data.classes import CLASS_MAP, load_class_map
from lab.data.realdev import REAL_DEV, load_real
from shared.annotations import AnnotatedImage, ImageMeta, ObjectAnnotation

BOX = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)


def image(*names, source=None):
    return AnnotatedImage(ImageMeta("x", 64, 64, source=source),
                          [ObjectAnnotation(n, BOX) for n in names],
                          pixels=np.zeros((64, 64, 3), np.uint8))


def test_names_map_onto_the_three_classes():
    cmap = load_class_map()
    assert cmap.classes == ("aircraft", "ship", "vehicle")
    assert [cmap.canonical(n) for n in ("Airplane", "plane", "boat", "small vehicle", "bus")] \
        == ["aircraft", "aircraft", "ship", "vehicle", "vehicle"]
    assert cmap.canonical("storage-tank") is None
    with pytest.raises(ValueError, match="neither mapped nor ignored"):
        cmap.canonical("zeppelin")
    assert cmap.counts(image("plane", "car", "car", "harbor")) == \
        {"aircraft": 1, "ship": 0, "vehicle": 2}


def test_labelled_classes_per_source_and_exclusions():
    cmap = load_class_map()
    assert cmap.labelled("airbus_aircraft", image("Airplane")) == {"aircraft"}
    # A marina's cars are unknown (boxed here and there); its aircraft known, none.
    assert cmap.labelled("aerial_maritime_drone", image("boat", "car")) == {"ship", "aircraft"}
    assert cmap.counts(image("jetski", "dock", "lift", "camping car", "other")) == \
        {"aircraft": 0, "ship": 1, "vehicle": 2}
    # NWPU: an airport image labels airplanes only; its cars are unknown, not absent
    assert cmap.labelled("nwpu_vhr10", image("airplane", "airplane")) == {"aircraft"}
    assert cmap.labelled("nwpu_vhr10", image("ship", "vehicle")) == {"ship", "vehicle"}
    # a harbour box stands for a marina whose boats are not boxed: its ship count is unknown
    assert cmap.labelled("nwpu_vhr10", image("ship", "harbor", "vehicle")) == {"vehicle"}
    assert not cmap.usable("nwpu_vhr10", image("vehicle", source="Vaihingen"))
    assert cmap.usable("nwpu_vhr10", image("vehicle", source="GoogleEarth"))
    with pytest.raises(ValueError, match="no labelling record"):
        cmap.labelled("somewhere_else", image())
    assert set(cmap.sources) == set(REAL_DEV)


@pytest.mark.parametrize("change, words", [
    (lambda m: m["names"].update(zeppelin=["blimp"]), "not one of"),
    (lambda m: m["names"]["ship"].append("plane"), "mapped twice"),
    (lambda m: m["ignored"].append("boat"), "both mapped and ignored"),
    (lambda m: m["sources"]["kit_cars"].update(labelled=["car"]), "unknown classes"),
    (lambda m: m.pop("classes"), "not a valid class map"),
    (lambda m: m["sources"]["nwpu_vhr10"].update(unlabelled_with={"boat": ["harbor"]}),
     "unlabelled_with names unknown classes"),
])
def test_a_malformed_map_is_refused_with_its_path(tmp_path, change, words):
    raw = json.loads(CLASS_MAP.read_text())
    change(raw)
    bad = tmp_path / "map.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=words) as exc:
        load_class_map(bad)
    assert str(bad) in str(exc.value)


@pytest.mark.realdata
def test_every_real_dev_name_is_decided_and_the_counts_are_the_published_ones(real_dev):
    cmap = load_class_map()
    totals = {}
    for name in REAL_DEV:
        ds = load_real(name, real_dev)
        assert ds.total() == REAL_DEV[name].expected_objects
        per = {c: 0 for c in cmap.classes}
        for img in ds.images:
            if cmap.usable(name, img):
                for c, n in cmap.counts(img).items():
                    per[c] += n
        totals[name] = per
    assert totals["airbus_aircraft"] == {"aircraft": 2625, "ship": 0, "vehicle": 0}
    assert totals["kit_cars"] == {"aircraft": 0, "ship": 0, "vehicle": 316}
    assert totals["dota8"] == {"aircraft": 2, "ship": 105, "vehicle": 4}
    # NWPU README: 499 airplanes, 216 ships, 357 vehicles of which 228 in the 21 CIR crops
    assert totals["nwpu_vhr10"] == {"aircraft": 499, "ship": 216, "vehicle": 357 - 228}
    assert totals["ships_google_earth"] == {"aircraft": 0, "ship": 1368, "vehicle": 0}
    assert totals["gdit_aerial_airport"] == {"aircraft": 4923, "ship": 0, "vehicle": 0}
    # VEDAI README: pickup 62, car 39, tractor 35, camping car 23, truck 17, van 7, other 6;
    # boat 6
    assert totals["vedai_partial"] == {"aircraft": 0, "ship": 6, "vehicle": 189}
    # boats 30 + jet skis 79; cars 16 (not exhaustive there); docks and lifts ignored
    assert totals["aerial_maritime_drone"] == {"aircraft": 0, "ship": 109, "vehicle": 16}

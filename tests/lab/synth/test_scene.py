"""Synthetic scenes: determinism, annotations, sizes, headings, crowding, shadows, clouds."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from lab.synth import SceneConfig, generate_scene


def _heading(poly: np.ndarray) -> float:
    head, tail = poly[:2].mean(axis=0), poly[2:].mean(axis=0)
    return math.degrees(math.atan2(head[0] - tail[0], -(head[1] - tail[1]))) % 360


def test_same_seed_same_scene_different_seed_different():
    cfg = SceneConfig(width=256, height=256, gsd_m=0.6, layout="urban")
    a, b, c = generate_scene(cfg, 7), generate_scene(cfg, 7), generate_scene(cfg, 8)
    assert np.array_equal(a.pixels, b.pixels)
    assert len(a.objects) == len(b.objects) > 0
    for oa, ob in zip(a.objects, b.objects, strict=True):
        assert oa.class_name == ob.class_name and np.array_equal(oa.polygon, ob.polygon)
    assert a.meta.to_dict() == b.meta.to_dict()
    assert not np.array_equal(a.pixels, c.pixels)


def test_image_and_metadata():
    cfg = SceneConfig(width=320, height=256, gsd_m=0.5, layout="harbour")
    scene = generate_scene(cfg, 3, image_id="harbour_a")
    assert scene.pixels.shape == (256, 320, 3) and scene.pixels.dtype == np.uint8
    assert scene.path is None
    meta = scene.meta
    assert (meta.image_id, meta.width, meta.height, meta.gsd_m) == ("harbour_a", 320, 256, 0.5)
    gt = meta.footprint.geotransform
    assert gt[1] == 0.5 and gt[5] == -0.5 and gt[2] == gt[4] == 0.0
    assert meta.footprint.crs == "local"
    assert meta.capture_time and meta.capture_time.endswith("Z")
    for key in ("sun_azimuth_deg", "sun_elevation_deg", "cloud_fraction", "seed"):
        assert key in meta.extra
    json.dumps(meta.to_dict())  # JSON-serialisable throughout
    assert generate_scene(cfg, 3).image_id == "synth_3"


def test_annotations_inside_frame_and_classes_from_config():
    for layout, seed in (("airport", 1), ("harbour", 2), ("urban", 3)):
        cfg = SceneConfig(width=384, height=320, gsd_m=0.8, layout=layout)
        scene = generate_scene(cfg, seed)
        assert scene.objects
        for obj in scene.objects:
            cx, cy = obj.centre
            assert 0 <= cx < 384 and 0 <= cy < 320
            assert obj.class_name in cfg.classes
            assert obj.polygon.min() >= -1e-9
            assert obj.polygon[:, 0].max() <= 384 + 1e-9 and obj.polygon[:, 1].max() <= 320 + 1e-9
            if not obj.truncated:
                assert len(obj.polygon) == 4
    only_vehicles = generate_scene(SceneConfig(width=384, height=384, gsd_m=0.8,
                                               layout="airport", classes=("vehicle",)), 1)
    assert only_vehicles.objects
    assert {o.class_name for o in only_vehicles.objects} == {"vehicle"}


def test_truncated_objects_touch_the_border():
    cfg = SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban", density=2.0)
    truncated = [o for s in range(3) for o in generate_scene(cfg, s).objects if o.truncated]
    assert truncated
    for obj in truncated:
        xmin, ymin, xmax, ymax = obj.box
        assert min(xmin, ymin) < 1e-6 or xmax > 256 - 1e-6 or ymax > 256 - 1e-6


@pytest.mark.slow
def test_object_sizes_scale_with_gsd():
    def sizes(cls: str, layout: str, gsd: float) -> np.ndarray:
        cfg = SceneConfig(width=384, height=384, gsd_m=gsd, layout=layout)
        found = [o.size_px for s in range(4) for o in generate_scene(cfg, s).objects
                 if o.class_name == cls and not o.truncated]
        assert len(found) >= 5
        return np.array(found)

    # Medians: cars dominate, so a truck park in one scene does not sway the ratio.
    ratio = np.median(sizes("vehicle", "urban", 0.5)) / np.median(sizes("vehicle", "urban", 1.0))
    assert 1.7 < ratio < 2.3
    for gsd in (0.5, 1.0):  # aircraft keep real-world sizes (small jets to wide-bodies)
        metres = sizes("aircraft", "airport", gsd) * gsd
        assert metres.min() > 10 and metres.max() < 110


def test_headings_cover_the_circle():
    headings = []
    for seed in range(4):
        cfg = SceneConfig(width=384, height=384, gsd_m=1.0, layout="mixed")
        headings += [_heading(o.polygon) for o in generate_scene(cfg, seed).objects
                     if not o.truncated]
    counts = np.histogram(headings, bins=8, range=(0, 360))[0]
    assert (counts > 0).all(), counts


def test_crowded_and_empty_regions():
    cfg = SceneConfig(width=512, height=512, gsd_m=1.0, layout="airport")
    for seed in (0, 1):
        scene = generate_scene(cfg, seed)
        tiles = np.zeros((8, 8), int)
        for obj in scene.objects:
            cx, cy = obj.centre
            tiles[int(cy // 64), int(cx // 64)] += 1
        assert (tiles == 0).sum() >= 4
        assert tiles.max() >= 5


def _object_masks(scene, h: int, w: int):
    boxes = np.zeros((h, w), np.uint8)
    for obj in scene.objects:
        cv2.fillPoly(boxes, [np.round(obj.polygon - 0.5).astype(np.int32)], 1)
    return boxes


def test_shadows_fall_on_the_anti_sun_side():
    """Just outside each aircraft, the side away from the sun is darker than the sunlit side."""
    size, darker = 512, []
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    for seed in range(4):
        cfg = SceneConfig(width=size, height=size, gsd_m=0.8, layout="airport",
                          classes=("aircraft",), cloud_cover=0.0, noise_sigma=0.0, blur_sigma=0.0)
        scene = generate_scene(cfg, seed)
        luma = scene.pixels.astype(np.float32).mean(axis=2)
        az = math.radians(scene.meta.extra["sun_azimuth_deg"])
        shadow_dir = np.array([-math.sin(az), math.cos(az)])
        occupied = _object_masks(scene, size, size).astype(bool)
        for obj in scene.objects:
            if obj.truncated:
                continue
            box = np.zeros((size, size), np.uint8)
            cv2.fillPoly(box, [np.round(obj.polygon - 0.5).astype(np.int32)], 1)
            ring = cv2.dilate(box, np.ones((5, 5), np.uint8)).astype(bool) & ~occupied
            cx, cy = obj.centre
            side = (xs - cx) * shadow_dir[0] + (ys - cy) * shadow_dir[1]
            anti_sun, sun = ring & (side > 0), ring & (side < 0)
            if anti_sun.sum() > 3 and sun.sum() > 3:
                darker.append(luma[sun].mean() - luma[anti_sun].mean())
    assert len(darker) > 30
    assert np.mean(darker) > 4.0
    assert np.mean(np.array(darker) > 0) > 0.8


def test_cloud_cover_brightens_and_is_reported():
    base = dict(width=256, height=256, gsd_m=0.5, layout="urban")
    clear = generate_scene(SceneConfig(**base, cloud_cover=0.0), 11)
    cloudy = generate_scene(SceneConfig(**base, cloud_cover=0.8), 11)
    assert clear.meta.extra["cloud_fraction"] == 0.0
    assert cloudy.meta.extra["cloud_fraction"] > 0.3
    assert cloudy.pixels.mean() > clear.pixels.mean() + 20
    # Same ground truth: clouds hide objects, they do not remove them.
    assert len(cloudy.objects) == len(clear.objects)
    assert any(o.difficult for o in cloudy.objects)


@pytest.mark.parametrize(("field", "value"), [
    ("width", 0), ("height", 10.5), ("gsd_m", 0.0), ("gsd_m", float("nan")),
    ("classes", ()), ("classes", ("aircraft", "tank")), ("density", -1.0),
    ("cloud_cover", 1.5), ("noise_sigma", -0.1), ("blur_sigma", -1.0),
    ("jpeg_quality", (0, 90)), ("jpeg_quality", (95, 80)), ("jpeg_quality", (50, 101)),
    ("layout", "desert")])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SceneConfig(**{field: value})


def test_config_accepts_lists():
    cfg = SceneConfig(classes=["ship"], jpeg_quality=[80, 90])
    assert cfg.classes == ("ship",) and cfg.jpeg_quality == (80, 90)

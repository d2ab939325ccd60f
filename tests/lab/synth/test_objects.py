"""Object shapes: real-world sizes, box corner order and heading, rendering and shadows."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lab.synth.objects import (
    PlacedObject,
    draw_object,
    draw_shadows,
    make_aircraft,
    make_object,
    make_ship,
    make_vehicle,
)


def _extent(parts) -> tuple[float, float]:
    pts = np.concatenate([p.outline for p in parts])
    span = pts.max(axis=0) - pts.min(axis=0)
    return float(span[0]), float(span[1])  # length (x, forward), width (y)


@pytest.mark.parametrize(("variant", "span_lo", "span_hi"),
                         [("wide", 45, 80), ("narrow", 26, 45), ("small", 11, 26)])
def test_aircraft_spans_are_real_world_sizes(variant, span_lo, span_hi):
    rng = np.random.default_rng(0)
    for _ in range(20):
        length, span = _extent(make_aircraft(rng, variant))
        assert span_lo <= span <= span_hi
        assert 0.6 * span <= length <= 1.5 * span


def test_vehicle_and_ship_sizes():
    rng = np.random.default_rng(1)
    for _ in range(20):
        length, width = _extent(make_vehicle(rng, "car"))
        assert 4.0 <= length <= 5.0 and 1.7 <= width <= 1.95
        length, _ = _extent(make_vehicle(rng, "truck"))
        assert 10.0 <= length <= 16.5
        length, width = _extent(make_ship(rng, "cargo"))
        assert 75 <= length <= 170 and length / width > 4


def test_box_corners_start_at_the_head_and_follow_the_heading():
    rng = np.random.default_rng(2)
    for heading in (0.0, 37.0, 90.0, 180.0, 271.0):
        obj = make_object(rng, "aircraft", "stand", 100.0, 100.0, heading, 80, 80)
        box = obj.box_px(0.5)
        head, tail = box[:2].mean(axis=0), box[2:].mean(axis=0)
        # Compass heading: 0 = up (-y), 90 = right (+x).
        got = math.degrees(math.atan2(head[0] - tail[0], -(head[1] - tail[1]))) % 360
        assert abs((got - heading + 180) % 360 - 180) < 1e-6
        assert np.allclose(box.mean(axis=0), [100.0, 100.0])
        # Clockwise on screen (y down): positive shoelace sum in image coordinates.
        x, y = box[:, 0], box[:, 1]
        assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0


def test_pixel_size_is_inverse_to_gsd():
    obj = make_object(np.random.default_rng(3), "aircraft", "stand", 0, 0, 30.0, 80, 80)
    size = [np.ptp(obj.box_px(gsd), axis=0).max() for gsd in (0.5, 1.0)]
    assert size[0] == pytest.approx(2 * size[1])


def test_object_paint_stays_inside_its_box():
    obj = make_object(np.random.default_rng(4), "ship", "sea", 80.0, 70.0, 123.0, 170, 30)
    img = np.zeros((160, 160, 3), np.float32)
    draw_object(img, obj, 1.0, (0.0, 0.0))
    painted = img.max(axis=2) > 0
    assert painted.sum() > 100
    box_mask = np.zeros((160, 160), np.uint8)
    cv2.fillPoly(box_mask, [np.round(obj.box_px(1.0) - 0.5).astype(np.int32)], 1)
    box_mask = cv2.dilate(box_mask, np.ones((5, 5), np.uint8))
    assert not (painted & (box_mask == 0)).any()


def test_shadow_is_cast_away_from_the_sun():
    obj = make_object(np.random.default_rng(5), "aircraft", "stand", 100.0, 100.0, 0.0, 80, 80)
    assert isinstance(obj, PlacedObject)
    sun_az, sun_el = 60.0, 35.0  # sun in the north-east: shadows fall south-west
    az = math.radians(sun_az)
    direction = np.array([-math.sin(az), math.cos(az)])
    mask = np.zeros((200, 200), np.uint8)
    draw_shadows(mask, obj, 1.0, direction / math.tan(math.radians(sun_el)), (0.0, 0.0))
    ys, xs = np.nonzero(mask)
    centroid = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    offset = centroid - [100.0, 100.0]
    assert np.dot(offset, direction) > 2.0  # moved along the shadow direction
    across = offset[0] * direction[1] - offset[1] * direction[0]
    assert abs(across) < 0.5 * np.linalg.norm(offset) + 1.0

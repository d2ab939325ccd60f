"""Revisits: synthetic captures of one footprint, and revisits of a (stand-in) real image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lab.synth import SceneConfig, generate_revisits, generate_scene, revisit_real
from shared.annotations import AnnotatedImage, ImageMeta, ObjectAnnotation

CFG = SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban")


def _ground_centres(capture: AnnotatedImage) -> np.ndarray:
    fp = capture.meta.footprint
    return np.array([fp.pixel_to_ground(*o.centre) for o in capture.objects]).reshape(-1, 2)


def _interior(captures, margin_m: float):
    """Ground box (xmin, xmax, ymin, ymax) covered by every capture, shrunk by margin_m."""
    boxes = []
    for c in captures:
        corners = np.array([c.meta.footprint.pixel_to_ground(x, y)
                            for x in (0, c.meta.width) for y in (0, c.meta.height)])
        boxes.append((*corners.min(axis=0), *corners.max(axis=0)))
    b = np.array(boxes)
    return (b[:, 0].max() + margin_m, b[:, 2].min() - margin_m,
            b[:, 1].max() + margin_m, b[:, 3].min() - margin_m)


def _in(points: np.ndarray, box) -> np.ndarray:
    return ((points[:, 0] > box[0]) & (points[:, 0] < box[1]) & (points[:, 1] > box[2])
            & (points[:, 1] < box[3]))


def test_revisits_share_ground_truth_and_sequence():
    caps = generate_revisits(CFG, seed=5, n=3, max_shift_px=24, scene_id="town")
    assert [c.image_id for c in caps] == ["town_t00", "town_t01", "town_t02"]
    assert {c.meta.sequence for c in caps} == {"town"}
    assert len({c.meta.capture_time for c in caps}) == 3
    shifts = {tuple(c.meta.extra["shift_px"]) for c in caps}
    assert len(shifts) == 3
    interior = _interior(caps, margin_m=10.0)
    centres = [_ground_centres(c) for c in caps]
    inside = [g[_in(g, interior)] for g in centres]
    assert len(inside[0]) >= 10
    assert len({len(g) for g in inside}) == 1  # same objects in the common ground area
    for other in inside[1:]:
        # Every object is at the same ground position in every capture (< 1 px * gsd).
        dist = np.linalg.norm(inside[0][:, None, :] - other[None, :, :], axis=2)
        assert dist.min(axis=1).max() < 0.5 * CFG.gsd_m
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(caps[a].pixels, caps[b].pixels)


def test_revisit_pixels_show_the_same_ground():
    cfg = SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban", cloud_cover=0.0)
    a, b = generate_revisits(cfg, seed=9, n=2, max_shift_px=20)
    # Map b's pixels into a's frame with the footprints: the overlap must correlate strongly.
    gx, gy = b.meta.footprint.pixel_to_ground(0, 0)
    dx, dy = a.meta.footprint.ground_to_pixel(gx, gy)  # b's (0, 0) in a's pixels
    warped = cv2.warpAffine(b.pixels, np.float32([[1, 0, dx], [0, 1, dy]]), (256, 256))
    core = (slice(30, 226), slice(30, 226))
    la, lb = a.pixels[core].mean(axis=2).ravel(), warped[core].mean(axis=2).ravel()
    assert np.corrcoef(la, lb)[0, 1] > 0.8
    assert np.corrcoef(la, b.pixels[core].mean(axis=2).ravel())[0, 1] < 0.8


def test_revisits_are_deterministic():
    one = generate_revisits(CFG, seed=2, n=2, max_shift_px=16)
    two = generate_revisits(CFG, seed=2, n=2, max_shift_px=16)
    for x, y in zip(one, two, strict=True):
        assert np.array_equal(x.pixels, y.pixels)
        assert x.meta.to_dict() == y.meta.to_dict()
        assert [o.polygon.tolist() for o in x.objects] == [o.polygon.tolist() for o in y.objects]


def test_revisits_with_changes():
    cfg = SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban", cloud_cover=0.0)
    caps = generate_revisits(cfg, seed=4, n=3, max_shift_px=8, change_fraction=0.1)
    first = caps[0].meta.extra
    assert first["changes_vs_first"] == {"moved": 0, "added": 0, "removed": 0}
    interior = _interior(caps, margin_m=10.0)
    base = _ground_centres(caps[0])
    base = base[_in(base, interior)]
    for cap in caps[1:]:
        ch = cap.meta.extra["changes_vs_first"]
        assert sum(ch.values()) >= 1
        grown = cap.meta.extra["world_objects"] - first["world_objects"]
        assert grown == ch["added"] - ch["removed"]
        here = _ground_centres(cap)
        here = here[_in(here, interior)]
        dist = np.linalg.norm(base[:, None, :] - here[None, :, :], axis=2)
        unmatched = (dist.min(axis=1) > 0.5).sum() + (dist.min(axis=0) > 0.5).sum()
        assert unmatched <= 2 * ch["moved"] + ch["added"] + ch["removed"]
    assert any((_ground_centres(c).shape != _ground_centres(caps[0]).shape) or not np.allclose(
        _ground_centres(c), _ground_centres(caps[0]), atol=10) for c in caps[1:])


def test_revisit_argument_validation():
    with pytest.raises(ValueError, match="n"):
        generate_revisits(CFG, 1, n=0)
    with pytest.raises(ValueError, match="change_fraction"):
        generate_revisits(CFG, 1, n=2, change_fraction=1.5)
    with pytest.raises(ValueError, match="max_shift_px"):
        generate_revisits(CFG, 1, n=2, max_shift_px=-3)


@pytest.fixture(scope="module")
def real_like() -> AnnotatedImage:
    """A stand-in for a real image: a scene stripped of its footprint, with a file-like id."""
    scene = generate_scene(SceneConfig(width=320, height=256, gsd_m=0.5, layout="urban",
                                       cloud_cover=0.0), 21)
    meta = ImageMeta("P0042.png", 320, 256, gsd_m=None, capture_time="2022-05-01T10:00:00")
    return AnnotatedImage(meta, scene.objects, pixels=scene.pixels)


def test_revisit_real_translates_objects_by_the_footprint_shift(real_like):
    revs = revisit_real(real_like, n=3, seed=1, max_shift_px=24)
    assert [r.image_id for r in revs] == ["P0042_rev00", "P0042_rev01", "P0042_rev02"]
    base_fp = revs[0].meta.footprint.shifted(*(-np.array(revs[0].meta.extra["shift_px"])))
    assert base_fp.geotransform == pytest.approx((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    far = [o for o in real_like.objects
           if o.box[0] > 26 and o.box[1] > 26 and o.box[2] < 320 - 26 and o.box[3] < 256 - 26]
    assert len(far) >= 3
    for rev in revs:
        assert rev.meta.sequence == "P0042.png"
        assert rev.pixels.shape == real_like.pixels.shape
        assert not np.array_equal(rev.pixels, real_like.pixels)
        # Recover the shift from the footprint alone: revisit (0, 0) in input pixels.
        dx, dy = base_fp.ground_to_pixel(*rev.meta.footprint.pixel_to_ground(0, 0))
        assert (dx, dy) == pytest.approx(tuple(rev.meta.extra["shift_px"]))
        assert 0 < max(abs(dx), abs(dy)) <= 24
        for obj in far:  # every object far from the border is kept, moved by exactly -shift
            moved = obj.polygon - [dx, dy]
            assert any(p.polygon.shape == moved.shape and np.allclose(p.polygon, moved, atol=1e-9)
                       for p in rev.objects)
        for obj in rev.objects:
            cx, cy = obj.centre
            assert 0 <= cx < 320 and 0 <= cy < 256
            assert obj.polygon.min() >= -1e-9
        # The picture moved with the objects.
        back = cv2.warpAffine(rev.pixels, np.float32([[1, 0, dx], [0, 1, dy]]), (320, 256))
        core = (slice(40, 216), slice(40, 280))
        corr = np.corrcoef(back[core].mean(axis=2).ravel(),
                           real_like.pixels[core].mean(axis=2).ravel())[0, 1]
        assert corr > 0.85
    assert revs[1].meta.capture_time > revs[0].meta.capture_time > "2022-05-01T10:00:00"


def test_revisit_real_keeps_footprint_and_is_deterministic(real_like):
    scene = generate_scene(SceneConfig(width=256, height=256, gsd_m=0.5, layout="urban"), 3)
    rev = revisit_real(scene, n=1, seed=4)[0]
    assert rev.meta.sequence == scene.image_id and rev.image_id == f"{scene.image_id}_rev00"
    dx, dy = rev.meta.extra["shift_px"]
    assert rev.meta.footprint.pixel_to_ground(0, 0) == pytest.approx(
        scene.meta.footprint.pixel_to_ground(dx, dy))
    one, two = revisit_real(real_like, 2, seed=8), revisit_real(real_like, 2, seed=8)
    for x, y in zip(one, two, strict=True):
        assert np.array_equal(x.pixels, y.pixels)
    assert not np.array_equal(one[0].pixels, revisit_real(real_like, 1, seed=9)[0].pixels)


def test_revisit_real_clips_and_drops_at_the_border():
    pixels = np.full((100, 100, 3), 90, np.uint8)
    objs = [ObjectAnnotation.from_box("vehicle", 2, 40, 12, 50),     # leaves or gets clipped
            ObjectAnnotation.from_box("vehicle", 45, 45, 55, 55)]    # stays whole
    image = AnnotatedImage(ImageMeta("edge", 100, 100, gsd_m=2.0), objs, pixels=pixels)
    seen_truncated = seen_dropped = False
    for seed in range(20):
        rev = revisit_real(image, 1, seed=seed, max_shift_px=10)[0]
        dx, _ = rev.meta.extra["shift_px"]
        assert rev.meta.footprint.geotransform[1] == 2.0
        assert any(not o.truncated and o.area == pytest.approx(100) for o in rev.objects)
        edge = [o for o in rev.objects if o.centre[0] < 25]
        if 7 - dx < 0:
            assert not edge
            seen_dropped = True
        elif 2 - dx < 0:
            assert edge[0].truncated and edge[0].box[0] == pytest.approx(0)
            seen_truncated = True
    assert seen_truncated and seen_dropped


def test_revisit_real_validation(real_like):
    with pytest.raises(ValueError, match="n must"):
        revisit_real(real_like, 0, seed=1)
    with pytest.raises(ValueError, match="jpeg_quality"):
        revisit_real(real_like, 1, seed=1, jpeg_quality=(90, 80))
    with pytest.raises(ValueError, match="border"):
        revisit_real(real_like, 1, seed=1, border="wrap")

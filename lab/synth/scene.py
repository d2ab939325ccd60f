"""Synthetic Earth-observation scenes: world building, rendering, degradations, revisits.

A *world* is shadow-free ground albedo (layout + materials), building/tree prisms and placed
objects, all in world pixels at ``gsd_m`` metres per pixel. Objects fill placement slots group
by group: each group (a stand row, a street lane, a marina pontoon) draws one occupancy rate,
so some rows are full and others empty; an object is skipped where its box would overlap
already placed ones. A *capture* is a window of the world (sub-pixel offset) rendered under
one sun: prism and object shadows (hull of the outline lifted to each height, projected away
from the sun) darken the ground, then objects are painted over them. Degradations follow:
illumination gradient and vignetting, cloud shadows, fractal-noise clouds and haze, a global
radiometric change, Gaussian blur (PSF), Gaussian + shot noise and a JPEG round trip.

Revisits render several windows of one larger world: each has its own shift, sun, clouds,
noise and JPEG quality, optionally a few objects moved/added/removed, and a footprint shifted
with it so ground coordinates of the same world point agree across captures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import cv2
import numpy as np

from lab.synth.layout import paint_region, partition
from lab.synth.objects import (
    CLASS_NAMES,
    PlacedObject,
    draw_object,
    draw_shadows,
    draw_wake,
    make_object,
)
from lab.synth.revisit import clip_to_frame, radiometric_change, sensor_noise, to_uint8
from lab.synth.textures import Ground, Slot, fractal_noise
from shared.annotations import AnnotatedImage, Footprint, ImageMeta, ObjectAnnotation
from shared.imageio import jpeg_roundtrip

LAYOUTS = ("airport", "harbour", "urban", "mixed")
OCCUPANCY = {"stand": (0.0, 0.3, 0.7, 0.9, 1.0), "stall": (0.0, 0.15, 0.5, 0.85, 0.97),
             "truck_stall": (0.0, 0.3, 0.6, 0.9), "street": (0.0, 0.1, 0.3, 0.6),
             "marina": (0.1, 0.5, 0.8, 0.95), "sea": (0.6,), "taxi": (0.3,),
             "apron_service": (0.0, 0.1, 0.3)}
SHADOW_TINT = np.array([0.42, 0.45, 0.52], np.float32)  # skylight keeps shadows bluish


@dataclass
class SceneConfig:
    width: int = 1024
    height: int = 1024
    gsd_m: float = 0.5
    classes: tuple[str, ...] = CLASS_NAMES
    density: float = 1.0  # scales object counts
    cloud_cover: float = 0.15  # expected fraction of the sky covered (0 = clear)
    noise_sigma: float = 3.0
    blur_sigma: float = 0.6
    jpeg_quality: tuple[int, int] = (75, 95)  # JPEG quality drawn from this closed range
    layout: str = "mixed"  # airport, harbour, urban, mixed

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 32:
                raise ValueError(f"{name} must be an integer >= 32, got {value!r}")
        _check_range("gsd_m", self.gsd_m, 0.05, 5.0)  # objects vanish beyond 5 m/px
        _check_range("density", self.density, 0.0, 10.0)
        _check_range("cloud_cover", self.cloud_cover, 0.0, 1.0)
        _check_range("noise_sigma", self.noise_sigma, 0.0, 100.0)
        _check_range("blur_sigma", self.blur_sigma, 0.0, 20.0)
        self.classes = tuple(self.classes)
        unknown = [c for c in self.classes if c not in CLASS_NAMES]
        if not self.classes or unknown or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct names from {CLASS_NAMES}, "
                             f"got {self.classes!r}")
        q = tuple(self.jpeg_quality)
        if len(q) != 2 or not all(isinstance(v, int | np.integer) for v in q) or not (
                1 <= q[0] <= q[1] <= 100):
            raise ValueError(f"jpeg_quality must be (lo, hi) integers with 1 <= lo <= hi <= 100, "
                             f"got {self.jpeg_quality!r}")
        self.jpeg_quality = (int(q[0]), int(q[1]))
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
            math.isfinite(value) and lo <= value <= hi) or (lo > 0 and value <= 0):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")


@dataclass
class World:
    ground: Ground
    objects: list[PlacedObject]
    free: list[Slot] = field(default_factory=list)  # unused slots, for revisit additions


def _box_fits(occ: np.ndarray, box: np.ndarray, max_overlap: float = 0.08) -> bool:
    lo = np.maximum(np.floor(box.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(box.max(axis=0)).astype(int) + 1, occ.shape[::-1])
    if np.any(hi <= lo):
        return False
    patch = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    cv2.fillPoly(patch, [np.round((box - lo - 0.5) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    area = int(patch.sum())
    return area > 0 and int((patch & occ[lo[1]:hi[1], lo[0]:hi[0]]).sum()) <= max_overlap * area


def _mark(occ: np.ndarray, box: np.ndarray) -> None:
    cv2.fillPoly(occ, [np.round((box - 0.5) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)


def build_world(rng: np.random.Generator, config: SceneConfig, width: int, height: int) -> World:
    gsd = config.gsd_m
    ground = Ground(np.zeros((height, width, 3), np.float32), gsd, rng)
    labels, frames = partition(rng, config.layout, height, width, gsd)
    for i, (kind, frame) in enumerate(frames):
        paint_region(ground, kind, labels == i, frame)
    # Fine multiplicative grain so that flat painted surfaces (roofs, markings) are not uniform.
    grain = fractal_noise(rng, height, width, 6.0, 3) - 0.5
    ground.albedo *= (1 + 0.08 * grain)[..., None]
    water = np.isin(labels, [i for i, (k, _) in enumerate(frames) if k == "water"])
    if water.any():  # quay edge / beach: a few metres of pale ground along the shoreline
        ring = cv2.dilate(water.astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=max(1, round(2.5 / gsd))).astype(bool) & ~water
        ground.albedo[ring] = ground.albedo[ring] * 0.3 + np.float32([150, 145, 130]) * 0.7
    rate: dict[int, float] = {}
    occ = np.zeros((height, width), np.uint8)
    objects, free = [], []
    for slot in ground.slots:
        if slot.class_name not in config.classes:
            continue
        if slot.group not in rate:
            rate[slot.group] = min(1.0, config.density * float(rng.choice(OCCUPANCY[slot.setting])))
        if rng.random() >= rate[slot.group]:
            free.append(slot)
            continue
        obj = make_object(rng, slot.class_name, slot.setting, slot.x, slot.y,
                          slot.heading_deg + rng.normal(0, 2.0), slot.max_len_m, slot.max_width_m)
        if obj is not None and _box_fits(occ, obj.box_px(gsd)):
            objects.append(obj)
            _mark(occ, obj.box_px(gsd))
    return World(ground, objects, free)


def render_view(world: World, objects: list[PlacedObject], ox: float, oy: float, width: int,
                height: int, sun_az: float, sun_el: float) -> np.ndarray:
    """The world window whose pixel (0, 0) is world (ox, oy), with shadows and objects."""
    g = world.ground
    if ox == int(ox) and oy == int(oy):
        img = g.albedo[int(oy):int(oy) + height, int(ox):int(ox) + width].copy()
    else:
        img = cv2.warpAffine(g.albedo, np.float32([[1, 0, ox], [0, 1, oy]]), (width, height),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    az, el = math.radians(sun_az), math.radians(sun_el)
    shadow_dir = np.array([-math.sin(az), math.cos(az)]) / math.tan(el) / g.gsd  # px per metre
    near = [o for o in objects
            if -400 < o.cx - ox < width + 400 and -400 < o.cy - oy < height + 400]
    for obj in near:
        if obj.moving:
            draw_wake(img, obj, g.gsd, (ox, oy))
    mask = np.zeros((height, width), np.uint8)
    origin = np.array([ox + 0.5, oy + 0.5])
    roofs = []
    for roof, z in g.prisms:
        px = roof - origin
        if px[:, 0].max() < -300 or px[:, 1].max() < -300 or px[:, 0].min() > width + 300 \
                or px[:, 1].min() > height + 300:
            continue
        hull = cv2.convexHull(np.concatenate([px, px + shadow_dir * z]).astype(np.float32))
        cv2.fillPoly(mask, [np.round(hull.reshape(-1, 2) * 16).astype(np.int32)], 255,
                     cv2.LINE_AA, 4)
        roofs.append(np.round(px * 16).astype(np.int32))
    if roofs:  # a roof is lit even though its own shadow hull covers it
        cv2.fillPoly(mask, roofs, 0, cv2.LINE_AA, 4)
    for obj in near:
        draw_shadows(mask, obj, g.gsd, shadow_dir, (ox, oy))
    shade = cv2.GaussianBlur(mask, (0, 0), 0.6).astype(np.float32) / 255.0
    img *= 1.0 - shade[..., None] * (1.0 - SHADOW_TINT)
    for obj in near:
        draw_object(img, obj, g.gsd, (ox, oy))
    return img


def annotate(objects: list[PlacedObject], gsd: float, ox: float, oy: float, width: int,
             height: int) -> list[ObjectAnnotation]:
    out = []
    for obj in objects:
        box = obj.box_px(gsd) - [ox, oy]
        cx, cy = box.mean(axis=0)
        if not (0 <= cx < width and 0 <= cy < height):
            continue  # an object is in the image only when its centre is
        if box.min() >= 0 and box[:, 0].max() <= width and box[:, 1].max() <= height:
            out.append(ObjectAnnotation(obj.class_name, box))
        elif (clipped := clip_to_frame(box, width, height)) is not None:
            out.append(ObjectAnnotation(obj.class_name, clipped, truncated=True))
    return out


def degrade(img: np.ndarray, rng: np.random.Generator, config: SceneConfig, sun_az: float,
            sun_el: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Atmosphere and sensor: returns uint8 pixels, cloud opacity map and JPEG quality."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = ((xs - w / 2) * math.cos(ang) + (ys - h / 2) * math.sin(ang)) / max(h, w)
    r2 = ((xs - w / 2) ** 2 + (ys - h / 2) ** 2) / (0.5 * (h * h + w * w))
    img *= (1 + rng.uniform(0, 0.12) * ramp - rng.uniform(0, 0.12) * r2)[..., None]
    alpha = np.zeros((h, w), np.float32)
    cover = float(np.clip(rng.normal(config.cloud_cover, 0.3 * config.cloud_cover), 0, 0.98))
    if cover > 0.005:
        # A cloud's shadow is the cloud shifted along the sun direction: render the noise on a
        # canvas large enough for both windows (cloud base ~1.5 km, offset capped to the frame).
        az = math.radians(sun_az)
        lift = min(1500.0 / math.tan(math.radians(sun_el)) / config.gsd_m, 0.35 * max(h, w))
        sx, sy = round(-math.sin(az) * lift), round(math.cos(az) * lift)
        canvas = fractal_noise(rng, h + abs(sy), w + abs(sx), max(h, w) / 2.5, 6, 0.55)
        ax, ay = max(sx, 0), max(sy, 0)
        noise = canvas[ay:ay + h, ax:ax + w]
        threshold = float(np.quantile(noise[::4, ::4], 1 - cover))
        alpha = np.clip((noise - threshold) / 0.15, 0, 1) ** 0.8
        shadow = np.clip((canvas[ay - sy:ay - sy + h, ax - sx:ax - sx + w] - threshold) / 0.15,
                         0, 1) ** 0.8
        img *= 1 - 0.5 * shadow[..., None]
        body = 0.82 + 0.18 * fractal_noise(rng, h, w, max(h, w) / 16, 4)
        blend = alpha[..., None]
        img += blend * (np.float32([236, 238, 242]) * body[..., None] - img)
    haze = rng.uniform(0.0, 0.12) * (0.5 + fractal_noise(rng, h, w, max(h, w) / 3, 2))
    img += haze[..., None] * (np.float32([195, 200, 212]) - img)
    img = radiometric_change(img, rng, (0.9, 1.1), (-6.0, 6.0), (0.9, 1.1))
    if config.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), config.blur_sigma * rng.uniform(0.8, 1.2))
    img = sensor_noise(img, rng, config.noise_sigma * rng.uniform(0.8, 1.2),
                       0.05 if config.noise_sigma > 0 else 0.0)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    return jpeg_roundtrip(to_uint8(img), quality), alpha, quality


def _sun(rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.uniform(0, 360)), float(rng.uniform(25, 70))


def _capture(world: World, objects: list[PlacedObject], config: SceneConfig,
             rng: np.random.Generator, ox: float, oy: float, sun: tuple[float, float],
             meta: ImageMeta) -> AnnotatedImage:
    w, h = config.width, config.height
    img = render_view(world, objects, ox, oy, w, h, *sun)
    pixels, clouds, quality = degrade(img, rng, config, *sun)
    annotations = []
    for ann in annotate(objects, config.gsd_m, ox, oy, w, h):
        cx, cy = ann.centre
        if clouds[min(int(cy), h - 1), min(int(cx), w - 1)] > 0.7:
            ann = replace(ann, difficult=True)  # on the ground, but hidden under cloud
        annotations.append(ann)
    meta.extra.update({"sun_azimuth_deg": sun[0], "sun_elevation_deg": sun[1],
                       "cloud_fraction": float(clouds.mean()), "jpeg_quality": quality,
                       "layout": config.layout})
    return AnnotatedImage(meta, annotations, path=None, pixels=pixels)


def _origin(rng: np.random.Generator, gsd: float) -> Footprint:
    x0, y0 = rng.uniform(0, 50_000), rng.uniform(0, 50_000)
    return Footprint((float(x0), gsd, 0.0, float(y0), 0.0, -gsd), "local")


def _start_time(rng: np.random.Generator) -> datetime:
    return datetime(2021, 1, 1) + timedelta(days=int(rng.integers(0, 1400)),
                                            seconds=int(rng.integers(8 * 3600, 16 * 3600)))


def generate_scene(config: SceneConfig, seed: int, image_id: str | None = None) -> AnnotatedImage:
    """One synthetic scene, deterministic in (config, seed)."""
    rng = np.random.default_rng(seed)
    # The world reaches past the frame so that objects on the edge are cut, as in a real crop.
    margin = math.ceil(min(40.0 / config.gsd_m, 0.125 * max(config.width, config.height)))
    world = build_world(rng, config, config.width + 2 * margin, config.height + 2 * margin)
    footprint, when = _origin(rng, config.gsd_m), _start_time(rng)
    meta = ImageMeta(image_id or f"synth_{seed}", config.width, config.height, config.gsd_m,
                     footprint, when.strftime("%Y-%m-%dT%H:%M:%SZ"), "targetfuse-synth",
                     extra={"seed": int(seed)})
    return _capture(world, world.objects, config, rng, float(margin), float(margin), _sun(rng),
                    meta)


def _change(rng: np.random.Generator, world: World, fraction: float, gsd: float, shape):
    """World objects with about ``fraction`` of them moved, added or removed."""
    objects, free = list(world.objects), list(world.free)
    counts = {"moved": 0, "added": 0, "removed": 0}
    n_changes = round(fraction * len(objects)) if fraction > 0 else 0
    if fraction > 0:
        n_changes = max(1, n_changes)
    for _ in range(n_changes):
        op = str(rng.choice(list(counts)))
        if op == "removed" or not free:
            if objects:
                objects.pop(int(rng.integers(len(objects))))
                counts["removed"] += 1
            continue
        slot = free.pop(int(rng.integers(len(free))))
        occ = np.zeros(shape, np.uint8)
        candidates = [i for i, o in enumerate(objects) if o.class_name == slot.class_name]
        if op == "moved" and candidates:
            i = candidates[int(rng.integers(len(candidates)))]
            obj = replace(objects.pop(i), cx=slot.x, cy=slot.y, heading_deg=slot.heading_deg)
        else:
            op = "added"
            obj = make_object(rng, slot.class_name, slot.setting, slot.x, slot.y,
                              slot.heading_deg, slot.max_len_m, slot.max_width_m)
        for o in objects:
            _mark(occ, o.box_px(gsd))
        if obj is not None and _box_fits(occ, obj.box_px(gsd)):
            objects.append(obj)
            counts[op] += 1
        elif op == "moved":
            counts["removed"] += 1  # it left and found no room: it is gone from this capture
    return objects, counts


def generate_revisits(config: SceneConfig, seed: int, n: int, max_shift_px: int = 48,
                      change_fraction: float = 0.0, scene_id: str | None = None,
                      ) -> list[AnnotatedImage]:
    """``n`` captures of one footprint, each a shifted window of one world (see module doc)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not (math.isfinite(max_shift_px) and 0 <= max_shift_px <= 4096):
        raise ValueError(f"max_shift_px must be in [0, 4096], got {max_shift_px}")
    if not (math.isfinite(change_fraction) and 0 <= change_fraction <= 1):
        raise ValueError(f"change_fraction must be in [0, 1], got {change_fraction}")
    rng = np.random.default_rng(seed)
    margin = math.ceil(max_shift_px) + 2
    ww, wh = config.width + 2 * margin, config.height + 2 * margin
    world = build_world(rng, config, ww, wh)
    world_fp, when = _origin(rng, config.gsd_m), _start_time(rng)
    sun = _sun(rng)
    sequence = scene_id or f"synthseq_{seed}"
    captures = []
    for k in range(n):
        dx, dy = (float(v) for v in rng.uniform(-max_shift_px, max_shift_px, 2))
        ox, oy = margin + dx, margin + dy
        capture_sun = ((sun[0] + rng.normal(0, 4)) % 360, float(np.clip(sun[1] + rng.normal(0, 3),
                                                                         15, 80)))
        objects, counts = world.objects, {"moved": 0, "added": 0, "removed": 0}
        if k > 0 and change_fraction > 0:
            objects, counts = _change(rng, world, change_fraction, config.gsd_m, (wh, ww))
        meta = ImageMeta(f"{sequence}_t{k:02d}", config.width, config.height, config.gsd_m,
                         world_fp.shifted(ox, oy), when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "targetfuse-synth", sequence,
                         extra={"seed": int(seed), "capture": k, "shift_px": [dx, dy],
                                "changes_vs_first": counts, "world_objects": len(objects)})
        captures.append(_capture(world, objects, config, rng, ox, oy, capture_sun, meta))
        when += timedelta(hours=float(rng.uniform(2, 30)))
    return captures

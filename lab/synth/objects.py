"""Objects seen from above: aircraft, ships and vehicles built from flat parts, with shadows.

Each object is a list of :class:`Part` s: a convex outline in metres in the object's own frame
(x forward towards the nose/bow, y to the right), a colour and the height band it occupies.
Shapes are generated from real-world dimensions (narrow-/wide-body and small aircraft with
swept wings, tail plane, fin and engines; cargo ships, tankers, tugs and yachts with pointed
bows and superstructures; cars, vans and trucks with roof and windows) with scale, proportion
and colour jitter, then recentred so that their bounding box is centred on the origin.

Rendering: a part's shadow is the convex hull of its outline lifted to ``z_bottom`` and to
``z_top`` and projected along the sun direction (offset ``z / tan(elevation)``); it is drawn into
a shadow mask before the object. The object itself is painted part by part (painter's order)
into a 4x supersampled patch and area-downsampled, which gives anti-aliased edges and sub-pixel
detail. The annotation is the oriented bounding box, corners ordered head-left, head-right,
tail-right, tail-left (clockwise on screen), as DOTA orders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CLASS_NAMES = ("aircraft", "ship", "vehicle")
SUPERSAMPLE = 4
_SHIFT = 4  # fractional bits for cv2.fillPoly coordinates

LIVERY = [(240, 240, 242), (232, 234, 236), (246, 246, 246), (205, 208, 212), (225, 225, 228)]
ACCENT = [(30, 60, 140), (180, 30, 35), (20, 110, 80), (230, 120, 20), (90, 40, 120),
          (240, 240, 240), (40, 40, 45), (0, 120, 190)]
CAR = [(235, 235, 235)] * 5 + [(25, 25, 28)] * 4 + [(120, 122, 125)] * 3 + [(180, 182, 186)] * 3 \
    + [(40, 70, 140), (150, 30, 30), (30, 90, 60), (200, 170, 60), (90, 60, 40)]
CONTAINER = [(160, 50, 40), (40, 90, 150), (200, 200, 195), (60, 120, 70), (200, 130, 40),
             (120, 120, 125), (170, 40, 90), (40, 150, 160)]


@dataclass(frozen=True)
class Part:
    outline: np.ndarray  # (N, 2) metres, x forward, y right; convex
    colour: tuple[int, int, int]
    z_bottom: float  # metres above the ground
    z_top: float


@dataclass
class PlacedObject:
    class_name: str
    variant: str
    parts: list[Part]
    cx: float  # centre of the oriented box, world pixels
    cy: float
    heading_deg: float  # compass heading of the nose: 0 = up (north), clockwise
    half_length_m: float
    half_width_m: float
    moving: bool = False  # ships under way draw a wake
    texture_seed: int = 0

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit forward and right vectors in image coordinates (y down)."""
        h = math.radians(self.heading_deg)
        return np.array([math.sin(h), -math.cos(h)]), np.array([math.cos(h), math.sin(h)])

    def to_pixels(self, pts_m: np.ndarray, gsd: float) -> np.ndarray:
        fwd, right = self.axes()
        pts = np.asarray(pts_m, dtype=np.float64)
        return np.array([self.cx, self.cy]) + (np.outer(pts[:, 0], fwd)
                                               + np.outer(pts[:, 1], right)) / gsd

    def box_px(self, gsd: float) -> np.ndarray:
        """Oriented box corners: head-left, head-right, tail-right, tail-left."""
        a, b = self.half_length_m, self.half_width_m
        return self.to_pixels(np.array([[a, -b], [a, b], [-a, b], [-a, -b]]), gsd)


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)


def _mirror(right_side: list[tuple[float, float]]) -> np.ndarray:
    """Close a right-side outline (nose first, y >= 0) with its mirror image."""
    pts = [(x, y) for x, y in right_side]
    left = [(x, -y) for x, y in reversed(right_side) if y > 0]
    return np.array(pts + left, dtype=np.float64)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, palette: list) -> tuple[int, int, int]:
    return palette[int(rng.integers(len(palette)))]


def make_aircraft(rng: np.random.Generator, variant: str) -> list[Part]:
    """Airliner or small aircraft: wings and tail plane first, fuselage over them, fin on top."""
    length0, span0, sweep0 = {"wide": (64.0, 62.0, 31.0), "narrow": (38.0, 35.0, 26.0),
                              "small": (17.0, 17.0, 8.0)}[variant]
    k = rng.uniform(0.82, 1.18)  # scale jitter
    length, span = length0 * k * rng.uniform(0.95, 1.05), span0 * k * rng.uniform(0.93, 1.07)
    sweep = math.radians(sweep0 + rng.uniform(-4, 4))
    prop = variant == "small" and rng.random() < 0.4
    if prop:
        span, sweep = length * 1.3, math.radians(rng.uniform(0, 3))
    half, fw = length / 2, length * (0.1 if variant == "small" else 0.092)
    body, tail = _pick(rng, LIVERY), _pick(rng, ACCENT + LIVERY[:2])
    wing = tuple(int(c) for c in np.clip(np.array(_pick(rng, LIVERY)) * rng.uniform(0.8, 0.92)
                                         + [0, 2, 6], 0, 255))
    engine = body if rng.random() < 0.5 else _pick(rng, [tail, wing, (150, 152, 158)])
    z_wing = {"wide": 4.0, "narrow": 2.8, "small": 1.6}[variant]
    z_body = z_wing - 1.0
    parts: list[Part] = []
    # Main wings: trapezoids from the fuselage centre to the tips.
    x_le = 0.07 * length if not prop else 0.12 * length
    root_c = (0.2 if not prop else 0.11) * length
    tip_c = root_c * (0.3 if not prop else 0.6)
    tip_le = x_le - (span / 2) * math.tan(sweep)
    for side in (1, -1):
        wing_pts = [(x_le, 0.3 * fw), (tip_le, span / 2), (tip_le - tip_c, span / 2),
                    (x_le - root_c, 0.3 * fw)]
        parts.append(Part(np.array(wing_pts) * [1, side], wing, z_wing - 0.3, z_wing + 0.3))
    # Engines: nacelles under the wings, or on the rear fuselage for small jets.
    if variant == "small" and not prop:
        ex, ew, el = -half + 0.3 * length, 0.08 * length, 0.16 * length
        for side in (1, -1):
            y0 = side * (0.5 * fw + 0.02 * length)
            parts.append(Part(_rect(ex - el, ex, y0, y0 + side * ew), engine,
                              z_body + fw * 0.4, z_body + fw))
    else:
        stations = [0.34] if variant != "wide" or rng.random() < 0.75 else [0.36, 0.64]
        el, ew = (0.11 if not prop else 0.14) * length, (0.058 if not prop else 0.07) * length
        for s in stations:
            for side in (1, -1):
                y = s * span / 2
                front = x_le - y * math.tan(sweep) + 0.45 * el
                nacelle = _rect(front - el, front, side * y - ew / 2, side * y + ew / 2)
                parts.append(Part(nacelle, engine, 0.6, 0.6 + ew))
                if prop:  # propeller disc edge-on: a dark bar across the nacelle front
                    parts.append(Part(_rect(front, front + 0.25, side * y - 1.4, side * y + 1.4),
                                      (45, 45, 48), z_wing - 1.2, z_wing + 1.2))
    # Horizontal stabiliser.
    h_span = span * (0.36 if not prop else 0.3)
    h_root, h_le = 0.1 * length, -half + 0.17 * length
    h_tip_le = h_le - (h_span / 2) * math.tan(sweep + 0.09)
    t_tail = variant == "small" and rng.random() < 0.5
    z_h = z_body + fw + (0.16 * length if t_tail else 0.0)
    for side in (1, -1):
        stab = [(h_le, 0.2 * fw), (h_tip_le, h_span / 2), (h_tip_le - 0.4 * h_root, h_span / 2),
                (h_le - h_root, 0.2 * fw)]
        parts.append(Part(np.array(stab) * [1, side], wing, z_h - 0.2, z_h + 0.2))
    # Fuselage with an ogive nose and a tapered tail cone; a lighter crown line gives it volume.
    right = [(half, 0.0), (half - 0.25 * fw, 0.3 * fw), (half - 0.6 * fw, 0.45 * fw),
             (half - 1.2 * fw, 0.5 * fw), (-half + 0.28 * length, 0.5 * fw),
             (-half + 0.08 * length, 0.28 * fw), (-half, 0.1 * fw)]
    parts.append(Part(_mirror(right), _shade(body, 0.93), z_body, z_body + fw))
    parts.append(Part(_rect(-half + 0.2 * length, half - 1.3 * fw, -0.2 * fw, 0.2 * fw),
                      _shade(body, 1.05), z_body, z_body + fw))
    parts.append(Part(_rect(half - 0.75 * fw, half - 0.55 * fw, -0.33 * fw, 0.33 * fw),
                      (50, 55, 65), z_body, z_body + fw))  # cockpit windows
    fin_top = z_body + fw + (0.2 if variant != "small" else 0.17) * length
    parts.append(Part(_rect(-half + 0.01 * length, -half + 0.21 * length, -0.1 * fw, 0.1 * fw),
                      tail, z_body + fw, fin_top))
    return parts


def _hull_outline(length: float, beam: float, bow: float) -> np.ndarray:
    half = length / 2
    return _mirror([(half, 0.0), (half - 0.35 * bow, 0.32 * beam), (half - 0.7 * bow, 0.46 * beam),
                    (half - bow, 0.5 * beam), (-half + 0.04 * length, 0.5 * beam),
                    (-half, 0.4 * beam)])


def make_ship(rng: np.random.Generator, variant: str, max_len_m: float = 1e9) -> list[Part]:
    """A hull with a pointed bow, a deck inset, and the variant's superstructure and cargo."""
    lo, hi, ratio = {"cargo": (90, 150, 6.5), "tanker": (90, 150, 6.0), "tug": (18, 40, 3.3),
                     "yacht": (10, 26, 3.4)}[variant]
    length = min(rng.uniform(lo, hi) * rng.uniform(0.9, 1.1), max_len_m)
    beam = length / ratio * rng.uniform(0.9, 1.1)
    half, bow = length / 2, length * (0.2 if variant in ("cargo", "tanker") else 0.3)
    freeboard = max(1.0, length * 0.06)
    if variant == "yacht":
        hull_c, deck_c = (245, 245, 245), _pick(rng, [(170, 140, 100), (235, 235, 230)])
    else:
        hull_c = _pick(rng, [(30, 30, 35), (120, 35, 30), (35, 50, 90), (90, 92, 95)])
        deck_c = _pick(rng, [(140, 60, 45), (70, 105, 80), (110, 110, 108), (150, 90, 60)])
    hull = _hull_outline(length, beam, bow)
    parts = [Part(hull, hull_c, 0.0, freeboard),
             Part(hull * [0.95, 0.86], deck_c, 0.0, freeboard)]
    white = (238, 238, 236)
    if variant == "cargo":
        x, x_end = half - bow * 0.9, -half + 0.2 * length
        rows = max(1, int(0.86 * beam // 2.44))
        while x - 12.2 > x_end:
            if rng.random() < 0.85:
                for r in range(rows):
                    y0 = -rows * 1.22 + r * 2.44
                    h = freeboard + 2.6 * int(rng.integers(1, 5))
                    parts.append(Part(_rect(x - 12.0, x, y0 + 0.05, y0 + 2.39),
                                      _pick(rng, CONTAINER), freeboard, h))
            x -= 12.9
    if variant == "tanker":
        parts.append(Part(_rect(-half + 0.2 * length, half - bow, -0.6, 0.6), (200, 200, 190),
                          freeboard, freeboard + 1.5))
    if variant in ("cargo", "tanker"):
        x0 = -half + 0.05 * length
        parts.append(Part(_rect(x0, x0 + 0.09 * length, -0.45 * beam, 0.45 * beam), white,
                          freeboard, freeboard + 18.0))
        parts.append(Part(_rect(x0 - 0.01 * length, x0 + 0.02 * length, -0.12 * beam,
                                0.12 * beam), _pick(rng, ACCENT), freeboard, freeboard + 24.0))
    elif variant == "tug":
        parts.append(Part(_rect(-0.05 * length, 0.25 * length, -0.3 * beam, 0.3 * beam), white,
                          freeboard, freeboard + 5.0))
    else:  # yacht: cabin forward of a darker cockpit
        parts.append(Part(_rect(-0.05 * length, 0.22 * length, -0.32 * beam, 0.32 * beam), white,
                          freeboard, freeboard + 1.8))
        parts.append(Part(_rect(-0.05 * length, -0.02 * length, -0.3 * beam, 0.3 * beam),
                          (40, 50, 60), freeboard, freeboard + 1.8))
        parts.append(Part(_rect(-0.42 * length, -0.12 * length, -0.3 * beam, 0.3 * beam),
                          (150, 120, 85), 0.0, freeboard))
    return parts


def make_vehicle(rng: np.random.Generator, variant: str, palette: list | None = None) -> list[Part]:
    """Car or van (body, roof, dark windscreen and rear window) or truck (cab and trailer)."""
    colour = _pick(rng, palette or CAR)
    if variant == "truck":
        trailer_len, width = rng.uniform(8.0, 13.6), rng.uniform(2.4, 2.55)
        half = (trailer_len + 2.6) / 2
        trailer = _pick(rng, [(235, 235, 235), (200, 200, 205), (150, 152, 158), colour])
        return [Part(_rect(half - 2.3, half, -width / 2, width / 2), colour, 0.4, 3.0),
                Part(_rect(half - 1.0, half - 0.6, -width / 2 + 0.15, width / 2 - 0.15),
                     (40, 45, 55), 0.4, 3.0),
                Part(_rect(-half, half - 2.6, -width / 2, width / 2), trailer, 0.8, 4.0)]
    length = rng.uniform(4.1, 4.9) if variant == "car" else rng.uniform(5.0, 6.0)
    width = rng.uniform(1.72, 1.9) if variant == "car" else rng.uniform(1.9, 2.05)
    half, w2, c = length / 2, width / 2, 0.35
    body = np.array([(half, -w2 + c), (half, w2 - c), (half - c, w2), (-half + c, w2),
                     (-half, w2 - c), (-half, -w2 + c), (-half + c, -w2), (half - c, -w2)])
    roof0, roof1 = (-0.3 * length, 0.12 * length) if variant == "car" else (-half + 0.2, 0.2)
    glass = (30, 35, 42)
    return [Part(body, colour, 0.2, 1.0),
            Part(_rect(roof1, roof1 + 0.16 * length, -w2 + 0.2, w2 - 0.2), glass, 0.8, 1.4),
            Part(_rect(roof0 - 0.08 * length, roof0, -w2 + 0.22, w2 - 0.22), glass, 0.8, 1.4),
            Part(_rect(roof0, roof1, -w2 + 0.18, w2 - 0.18), _shade(colour, 1.06), 1.0,
                 1.5 if variant == "car" else 2.2)]


def make_object(rng: np.random.Generator, class_name: str, setting: str, cx: float, cy: float,
                heading_deg: float, max_len_m: float, max_width_m: float) -> PlacedObject | None:
    """An object for a placement slot, or None when no variant fits the space."""
    for _ in range(4):
        if class_name == "aircraft":
            options = ["small"] if max_width_m < 30 else (
                ["narrow", "small"] if max_width_m < 55 else ["wide", "narrow"])
            variant = options[0] if rng.random() < 0.8 else options[-1]
            parts = make_aircraft(rng, variant)
        elif class_name == "ship":
            options = ["yacht"] if setting == "marina" else (
                ["cargo", "tanker", "tug", "yacht"] if max_len_m >= 90 else ["tug", "yacht"])
            variant = options[int(rng.integers(len(options)))]
            parts = make_ship(rng, variant, max_len_m)
        else:
            if setting == "truck_stall":
                variant = "truck"
            else:
                variant = str(rng.choice(["car", "van", "truck"], p=[0.86, 0.1, 0.04]))
                variant = "car" if setting == "stall" and variant == "truck" else variant
            apron = [(235, 200, 30), (240, 240, 240), (230, 120, 20)]
            parts = make_vehicle(rng, variant, apron if setting == "apron_service" else None)
        pts = np.concatenate([p.outline for p in parts])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if hi[0] - lo[0] <= max_len_m and hi[1] - lo[1] <= max_width_m:
            centre = (lo + hi) / 2
            parts = [Part(p.outline - centre, p.colour, p.z_bottom, p.z_top) for p in parts]
            moving = setting == "sea" and (variant != "yacht" or rng.random() < 0.5)
            return PlacedObject(class_name, variant, parts, cx, cy, heading_deg % 360.0,
                                float(hi[0] - lo[0]) / 2, float(hi[1] - lo[1]) / 2,
                                moving=moving, texture_seed=int(rng.integers(2**31)))
    return None


def fill_poly(img: np.ndarray, pts: np.ndarray, value, line_type: int = cv2.LINE_8) -> None:
    cv2.fillPoly(img, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], value, line_type, _SHIFT)


def draw_shadows(mask: np.ndarray, obj: PlacedObject, gsd: float, shadow_px_per_m: np.ndarray,
                 origin: tuple[float, float]) -> None:
    """Add the object's shadow to a uint8 mask (255 = shadow) of a window at ``origin``."""
    off = np.asarray(origin) + 0.5  # continuous -> OpenCV pixel-centre coordinates
    for part in obj.parts:
        px = obj.to_pixels(part.outline, gsd) - off
        lifted = np.concatenate([px + shadow_px_per_m * part.z_bottom,
                                 px + shadow_px_per_m * part.z_top]).astype(np.float32)
        fill_poly(mask, cv2.convexHull(lifted).reshape(-1, 2), 255, cv2.LINE_AA)


def draw_object(img: np.ndarray, obj: PlacedObject, gsd: float,
                origin: tuple[float, float]) -> None:
    """Composite the object into a float32 RGB window whose pixel (0, 0) is at world ``origin``."""
    polys = [obj.to_pixels(p.outline, gsd) - np.asarray(origin) for p in obj.parts]
    allpts = np.concatenate(polys)
    x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 1
    h, w = img.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    s = SUPERSAMPLE
    colour = np.zeros(((y1 - y0) * s, (x1 - x0) * s, 3), np.uint8)
    alpha = np.zeros(colour.shape[:2], np.uint8)
    for part, poly in zip(obj.parts, polys, strict=True):
        q = (poly - [x0, y0]) * s - 0.5
        fill_poly(colour, q, part.colour)
        fill_poly(alpha, q, 255)
    size = (x1 - x0, y1 - y0)
    a = cv2.resize(alpha.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_AREA)
    c = cv2.resize(colour.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    a, c = a[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], c[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    region = img[cy0:cy1, cx0:cx1]
    region *= 1.0 - a[..., None]
    region += c


def draw_wake(img: np.ndarray, obj: PlacedObject, gsd: float, origin: tuple[float, float]) -> None:
    """Foam behind a moving ship: a turbulent centre trail and the two Kelvin-wake arms."""
    length_px, beam_px = 2 * obj.half_length_m / gsd, 2 * obj.half_width_m / gsd
    reach = 3.0 * length_px
    fwd, right = obj.axes()
    stern = np.array([obj.cx, obj.cy]) - np.asarray(origin) - fwd * length_px * 0.45
    ends = [stern, stern - fwd * reach + right * reach * 0.4,
            stern - fwd * reach - right * reach * 0.4]
    lo, hi = np.floor(np.min(ends, axis=0)).astype(int), np.ceil(np.max(ends, axis=0)).astype(int)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
    if x0 >= x1 or y0 >= y1:
        return
    xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    dx, dy = xs - stern[0], ys - stern[1]
    behind = -(dx * fwd[0] + dy * fwd[1])  # pixels aft of the stern
    side = dx * right[0] + dy * right[1]
    valid = behind > 0
    phase = obj.texture_seed % 1000
    foam = 0.5 + 0.5 * np.sin(behind * 0.9 + phase) * np.sin(side * 1.3 + phase)
    spread = 0.5 * beam_px + 0.08 * behind
    trail = np.exp(-behind / (1.5 * length_px)) * np.exp(-(side / spread) ** 2) * (0.5 + 0.4 * foam)
    arm = np.exp(-((np.abs(side) - behind * 0.354) / (0.4 * beam_px + 1.0)) ** 2)
    arms = arm * np.exp(-behind / (1.2 * length_px)) * 0.35
    alpha = np.where(valid, np.clip(trail + arms, 0, 0.85), 0).astype(np.float32)
    region = img[y0:y1, x0:x1]
    region += alpha[..., None] * (np.array([215, 225, 225], np.float32) - region)

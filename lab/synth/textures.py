"""Procedural ground: fractal-noise materials and the man-made layout painted over them.

Materials are sums of octaves of value noise (random grids upsampled with bicubic
``cv2.resize``), tinted per material: grass fields with mowing stripes, concrete with slab joints
and stains, asphalt, water with ripples and glints. Each land-use region is painted in its own
rotated metric frame (u along rows or streets, v across) so that markings are analytic
functions of (u, v): apron stands with lead-in lines and taxilane centrelines, parking stalls,
street grids with city blocks and buildings, marina pontoons. Painters also emit placement
:class:`Slot` s (where an aircraft, ship or vehicle may stand, with heading and free space) and
prisms (roof polygon + height) whose shadows the scene renderer casts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from lab.synth.objects import fill_poly

GRASS = [(86, 104, 58), (104, 116, 66), (128, 124, 84), (74, 92, 52), (140, 132, 96),
         (96, 110, 70)]
ROOF = [(150, 70, 55), (170, 95, 70), (120, 120, 122), (200, 200, 198), (85, 85, 90),
        (175, 170, 160), (110, 70, 60), (225, 225, 222)]


@dataclass
class Slot:
    """Where an object of ``class_name`` may be placed (centre in world pixels)."""

    class_name: str
    setting: str  # stand, taxi, apron_service, stall, truck_stall, street, sea, marina
    x: float
    y: float
    heading_deg: float
    max_len_m: float
    max_width_m: float
    group: int  # slots of one group (a stand row, a street lane) share an occupancy rate


@dataclass
class Ground:
    albedo: np.ndarray  # (H, W, 3) float32, shadow-free
    gsd: float
    rng: np.random.Generator
    slots: list[Slot] = field(default_factory=list)
    prisms: list[tuple[np.ndarray, float]] = field(default_factory=list)  # roof (N, 2) px, m
    groups: int = 0
    water_colour: np.ndarray | None = None  # one sea colour per scene, shared by water cells

    def new_group(self) -> int:
        self.groups += 1
        return self.groups


@dataclass(frozen=True)
class Frame:
    """A region's rotated metric frame: origin (world px) and angle of the u axis."""

    ox: float
    oy: float
    theta: float
    gsd: float

    def uv(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = (xs - self.ox) * self.gsd, (ys - self.oy) * self.gsd
        c, s = math.cos(self.theta), math.sin(self.theta)
        return dx * c + dy * s, -dx * s + dy * c

    def xy(self, u, v) -> np.ndarray:
        c, s = math.cos(self.theta), math.sin(self.theta)
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        return np.stack([self.ox + (u * c - v * s) / self.gsd,
                         self.oy + (u * s + v * c) / self.gsd], axis=-1)

    def heading(self, du: float, dv: float) -> float:
        c, s = math.cos(self.theta), math.sin(self.theta)
        return math.degrees(math.atan2(du * c - dv * s, -(du * s + dv * c))) % 360.0


def fractal_noise(rng: np.random.Generator, height: int, width: int, cell_px: float,
                  octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Value noise in [0, 1]: octaves of random grids, bicubically upsampled and summed."""
    out = np.zeros((height, width), np.float32)
    amp, total, cell = 1.0, 0.0, max(float(cell_px), 2.0)
    for _ in range(octaves):
        grid = rng.random((max(2, math.ceil(height / cell) + 1),
                           max(2, math.ceil(width / cell) + 1)), dtype=np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total, amp, cell = total + amp, amp * persistence, cell / 2
        if cell < 2.0:
            break
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def periodic_distance(x: np.ndarray, period: float, offset: float = 0.0) -> np.ndarray:
    """Distance from x to the nearest of offset + k * period."""
    return np.abs(np.mod(x - offset + period / 2, period) - period / 2)


def line_alpha(dist_m: np.ndarray, width_m: float, gsd: float) -> np.ndarray:
    """Coverage of a painted line of ``width_m`` at distance ``dist_m`` from its axis."""
    return np.clip(width_m / (2 * gsd) + 0.5 - np.abs(dist_m) / gsd, 0.0, 1.0).astype(np.float32)


def blend(tile: np.ndarray, alpha: np.ndarray, colour) -> None:
    tile += alpha[..., None] * (np.asarray(colour, np.float32) - tile)


def material(rng: np.random.Generator, h: int, w: int, gsd: float, colour, low: float,
             mid: float, grain: float) -> np.ndarray:
    """A flat colour with large-scale (30 m) and small-scale (3 m) variation and pixel grain."""
    shade = (low * (fractal_noise(rng, h, w, 30 / gsd, 3) - 0.5)
             + mid * (fractal_noise(rng, h, w, 3 / gsd, 2) - 0.5)
             + grain * rng.standard_normal((h, w), dtype=np.float32))
    return np.asarray(colour, np.float32) * (1 + shade[..., None] / 100)


def region_box(ground: Ground, mask: np.ndarray):
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    x0, x1, y0, y1 = int(xs[0]), int(xs[-1]) + 1, int(ys[0]), int(ys[-1]) + 1
    return x0, y0, x1, y1, mask[y0:y1, x0:x1]


def grid_uv(frame: Frame, x0: int, y0: int, x1: int, y1: int):
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32) + 0.5,
                         np.arange(y0, y1, dtype=np.float32) + 0.5)
    return frame.uv(xs, ys)


def uv_range(frame: Frame, x0: int, y0: int, x1: int, y1: int):
    u, v = frame.uv(np.array([x0, x1, x0, x1], float), np.array([y0, y0, y1, y1], float))
    return u.min(), u.max(), v.min(), v.max()


def all_inside(mask: np.ndarray, pts: np.ndarray) -> bool:
    h, w = mask.shape
    ij = np.floor(pts).astype(int)
    if ij[:, 0].min() < 0 or ij[:, 1].min() < 0 or ij[:, 0].max() >= w or ij[:, 1].max() >= h:
        return False
    return bool(mask[ij[:, 1], ij[:, 0]].all())


def add_slot(ground: Ground, mask: np.ndarray, frame: Frame, cls: str, setting: str, u: float,
             v: float, du: float, dv: float, length: float, width: float, group: int) -> None:
    """A slot centred at (u, v) facing (du, dv), kept when its whole footprint lies in mask."""
    n = math.hypot(du, dv)
    fu, fv = du / n * length / 2, dv / n * length / 2
    ru, rv = -dv / n * width / 2, du / n * width / 2
    corners = frame.xy([u + fu + ru, u + fu - ru, u - fu + ru, u - fu - ru, u],
                       [v + fv + rv, v + fv - rv, v - fv + rv, v - fv - rv, v])
    if all_inside(mask, corners):
        ground.slots.append(Slot(cls, setting, float(corners[4, 0]), float(corners[4, 1]),
                                 frame.heading(du, dv), length, width, group))


def rect_px(frame: Frame, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return frame.xy([u0, u1, u1, u0], [v0, v0, v1, v1])


def add_trees(ground: Ground, tile: np.ndarray, origin: tuple[int, int], submask: np.ndarray,
              centres_px: np.ndarray) -> None:
    """Tree crowns (dark green octagons with a lit side) and their shadow prisms."""
    rng, gsd = ground.rng, ground.gsd
    ang = np.linspace(0, 2 * np.pi, 9)[:-1]
    for cx, cy in centres_px:
        ix, iy = int(cx) - origin[0], int(cy) - origin[1]
        if not (0 <= iy < submask.shape[0] and 0 <= ix < submask.shape[1] and submask[iy, ix]):
            continue
        r = rng.uniform(2.0, 5.0) / gsd
        ring = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)
        green = np.array([48, 70, 38]) * rng.uniform(0.75, 1.2)
        fill_poly(tile, ring - origin - 0.5, tuple(float(c) for c in green))
        fill_poly(tile, (ring - [cx, cy]) * 0.5 + [cx - 0.3 * r, cy - 0.3 * r] - origin - 0.5,
              tuple(float(c) for c in green * 1.25))
        ground.prisms.append((ring, rng.uniform(5.0, 12.0)))

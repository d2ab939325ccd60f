"""Land-use layout of a scene: a partition into regions, each painted with its own structures.

The scene is split into Voronoi cells around stratified random seeds; distances to natural
cells (water, grass) get a fractal-noise term so coastlines and field edges wiggle while
boundaries between man-made cells stay straight. Each cell gets a kind drawn from the layout
("airport": aprons and grass, "harbour": water, quays and town, "urban": blocks and parking,
"mixed": one of everything) and a rotated frame sharing the scene's dominant grid angle.

Painters: an apron has rows of parking stands (lead-in lines, stand boundaries) back to back
along taxilanes with yellow centrelines; a car park has aisles and painted stalls (some lots for
trucks); a town has a street grid, blocks of buildings (flat roofs with plant, pitched roofs),
yards, parks and street trees; water has ripples, glints and sometimes a marina of pontoons;
grass has fields, mowing stripes and tree clumps. Occupancy is decided later per slot group,
which is what makes some stand rows full and others empty.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lab.synth.objects import fill_poly
from lab.synth.textures import (
    GRASS,
    ROOF,
    Frame,
    Ground,
    add_slot,
    add_trees,
    all_inside,
    blend,
    fractal_noise,
    grid_uv,
    line_alpha,
    material,
    periodic_distance,
    rect_px,
    region_box,
    uv_range,
)

KINDS = {"airport": ["apron", "grass", "apron", "parking", "grass", "grass", "apron"],
         "harbour": ["water", "urban", "water", "parking", "water", "grass", "urban"],
         "urban": ["urban", "parking", "urban", "grass", "urban", "parking", "urban"],
         "mixed": ["apron", "water", "urban", "parking", "grass", "urban", "grass"]}
NATURAL = ("water",)  # only shorelines wiggle; land-use edges stay straight
YELLOW, WHITE = (215, 180, 40), (225, 225, 220)


def partition(rng: np.random.Generator, layout: str, height: int, width: int, gsd: float):
    """Region label map (H, W) and a list of (kind, Frame) per label."""
    area_m2 = height * width * gsd * gsd
    n = int(np.clip(round(area_m2 / 50_000), 2, 7))
    # The layout's signature kind always appears; the others are a random draw from its list.
    rest = KINDS[layout][1:]
    kinds = [KINDS[layout][0]] + [rest[i] for i in rng.permutation(len(rest))[:n - 1]]
    rng.shuffle(kinds)
    cols = math.ceil(math.sqrt(n * width / height))
    rows = math.ceil(n / cols)
    cells = rng.permutation(rows * cols)[:n]
    seeds = [((c % cols + rng.uniform(0.15, 0.85)) * width / cols,
              (c // cols + rng.uniform(0.15, 0.85)) * height / rows) for c in cells]
    step = 4  # distances at quarter resolution; region edges only need to be smooth
    hs, ws = math.ceil(height / step), math.ceil(width / step)
    ys, xs = np.mgrid[0:hs, 0:ws].astype(np.float32) * step + step / 2
    wiggle = (fractal_noise(rng, hs, ws, 60 / gsd / step, 4) - 0.5) * 0.35 * math.sqrt(
        height * width)
    dist = np.stack([np.hypot(xs - sx, ys - sy) + (wiggle if k in NATURAL else 0)
                     for k, (sx, sy) in zip(kinds, seeds, strict=True)])
    labels = np.zeros((height, width), np.uint8)
    best = None
    for k, d in enumerate(dist):  # running minimum: much faster than argmin over a stack
        full = cv2.resize(d, (ws * step, hs * step), interpolation=cv2.INTER_LINEAR)
        full = full[:height, :width]
        if best is None:
            best = full
        else:
            closer = full < best
            labels[closer] = k
            best = np.minimum(best, full)
    theta0 = rng.uniform(0, math.pi)
    frames = []
    for k, (sx, sy) in zip(kinds, seeds, strict=True):
        turn = 0.0 if rng.random() < 0.6 else rng.choice([math.pi / 2, rng.uniform(0, 3)])
        theta = theta0 + turn
        frames.append((k, Frame(sx, sy, float(theta), gsd)))
    return labels, frames


def paint_rect(tile: np.ndarray, frame: Frame, origin, uv_box, colour) -> None:
    """Fill the frame rectangle (u0, u1, v0, v1) into a tile whose pixel (0, 0) is at origin."""
    fill_poly(tile, rect_px(frame, *uv_box) - origin - 0.5, tuple(float(c) for c in colour))


def paint_region(ground: Ground, kind: str, mask: np.ndarray, frame: Frame) -> None:
    if mask.any():
        PAINTERS[kind](ground, mask, frame)


def _commit(ground: Ground, tile: np.ndarray, x0: int, y0: int, sub: np.ndarray) -> None:
    target = ground.albedo[y0:y0 + tile.shape[0], x0:x0 + tile.shape[1]]
    target[sub] = tile[sub]


def paint_grass(ground: Ground, mask: np.ndarray, frame: Frame) -> None:
    """Fields in staggered rows, each with its own tint and crop/mowing stripes; hedges, trees."""
    rng, g = ground.rng, ground.gsd
    x0, y0, x1, y1, sub = region_box(ground, mask)
    h, w = sub.shape
    u, v = grid_uv(frame, x0, y0, x1, y1)
    fu, fv = rng.uniform(40, 130), rng.uniform(30, 100)
    iu = np.floor(u / fu)
    v_shift = v + np.mod(iu, 3) * fv / 3
    field_id = (iu.astype(np.int64) * 7919 + np.floor(v_shift / fv).astype(np.int64) * 104729
                + int(rng.integers(1000))) % 997
    palette = np.array(GRASS, np.float32)[rng.permutation(len(GRASS))]
    tint = palette[field_id % len(GRASS)] * (0.9 + 0.2 * ((field_id * 0.618) % 1.0))[..., None]
    period = 2.5 + (field_id % 5)
    along = np.where(field_id % 2 == 0, u, v)
    stripes = 1 + 0.06 * np.sin(along * (2 * math.pi) / period) * (field_id % 3 != 0)
    tile = tint * material(rng, h, w, g, (1, 1, 1), 16, 12, 1.5) * stripes[..., None]
    edges = np.maximum(line_alpha(periodic_distance(u, fu), 1.6, g),
                       line_alpha(np.abs(np.mod(v_shift + fv / 2, fv) - fv / 2), 1.6, g))
    blend(tile, edges * 0.7, (70, 82, 50) if rng.random() < 0.5 else (150, 138, 110))
    for _ in range(int(rng.integers(1, 5))):  # clumps of trees
        c = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        add_trees(ground, tile, (x0, y0), sub,
                  c + rng.normal(0, 12 / g, (int(rng.integers(3, 15)), 2)))
    _commit(ground, tile, x0, y0, sub)


def paint_water(ground: Ground, mask: np.ndarray, frame: Frame) -> None:
    rng, g = ground.rng, ground.gsd
    x0, y0, x1, y1, sub = region_box(ground, mask)
    h, w = sub.shape
    if ground.water_colour is None:
        ground.water_colour = np.array([28, 52, 62], np.float32) * rng.uniform(0.85, 1.25, 3)
    tile = material(rng, h, w, g, ground.water_colour, 18, 4, 1.0)
    u, v = grid_uv(frame, x0, y0, x1, y1)
    swell = fractal_noise(rng, h, w, 20 / g, 2)
    ripple = np.sin(u * 1.3 + v * 0.4 + swell * 6) * np.sin(u * 0.3 - v * 1.1)
    tile *= (1 + 0.05 * ripple)[..., None]
    glint = np.clip(rng.random((h, w), dtype=np.float32) - 0.997, 0, None) * 8000 * swell
    tile += glint[..., None]
    if rng.random() < 0.6:
        _marina(ground, tile, (x0, y0), mask, frame)
    n_ships = rng.poisson(sub.sum() * g * g / 12_000)
    pick = rng.choice(np.flatnonzero(sub), size=min(n_ships, 40)) if n_ships else []
    for idx in pick:
        y, x = divmod(int(idx), w)
        ang = rng.uniform(0, 2 * math.pi)
        length = float(rng.choice([30.0, 60.0, 170.0], p=[0.4, 0.3, 0.3]))
        u_c, v_c = frame.uv(np.array([x + x0 + 0.5]), np.array([y + y0 + 0.5]))
        add_slot(ground, mask, frame, "ship", "sea", float(u_c[0]), float(v_c[0]), math.cos(ang),
                 math.sin(ang), length, min(30.0, length / 2.5), ground.new_group())
    _commit(ground, tile, x0, y0, sub)


def _marina(ground: Ground, tile: np.ndarray, origin, mask: np.ndarray, frame: Frame) -> None:
    """Pontoons with fingers every few metres; a yacht slot between each pair of fingers."""
    rng = ground.rng
    u_lo, u_hi, v_lo, v_hi = uv_range(frame, origin[0], origin[1],
                                       origin[0] + tile.shape[1], origin[1] + tile.shape[0])
    wood = (176, 168, 150)
    length, finger, spacing = rng.uniform(60, 180), rng.uniform(9, 14), rng.uniform(6, 8.5)
    if u_hi - u_lo <= length:
        return
    for _ in range(12):
        u0, v0 = rng.uniform(u_lo, u_hi - length), rng.uniform(v_lo, v_hi)
        if not all_inside(mask, rect_px(frame, u0, u0 + length, v0 - finger, v0 + finger)):
            continue
        for k in range(int(rng.integers(1, 4))):
            vk = v0 + k * (2 * finger + 16)
            if not all_inside(mask, rect_px(frame, u0, u0 + length, vk - finger, vk + finger)):
                break
            paint_rect(tile, frame, origin, (u0, u0 + length, vk - 1.2, vk + 1.2), wood)
            group = ground.new_group()
            for u in np.arange(u0, u0 + length - spacing, spacing):
                for side in (1, -1):
                    far = vk + side * (1.2 + finger)
                    paint_rect(tile, frame, origin, (u, u + 0.8, vk, far), wood)
                    add_slot(ground, mask, frame, "ship", "marina", u + spacing / 2 + 0.4,
                             vk + side * (1.2 + finger / 2 + 0.5), 0, side, finger + 2,
                             spacing - 1.6, group)
        return


def paint_apron(ground: Ground, mask: np.ndarray, frame: Frame) -> None:
    """Concrete apron: [taxilane | stand row nose +v | service road | stand row nose -v]."""
    rng, g = ground.rng, ground.gsd
    x0, y0, x1, y1, sub = region_box(ground, mask)
    h, w = sub.shape
    stand_w, depth, lane = {"wide": (76, 74, 48), "narrow": (44, 46, 36), "small": (24, 24, 22)}[
        str(rng.choice(["wide", "narrow", "small"], p=[0.2, 0.5, 0.3]))]
    road, slab = 12.0, rng.choice([5.0, 7.5])
    unit = lane + 2 * depth + road
    tone = rng.uniform(150, 185)
    tile = material(rng, h, w, g, (tone, tone, tone * 0.97), 10, 6, 1.2)
    u, v = grid_uv(frame, x0, y0, x1, y1)
    vv = np.mod(v, unit)
    joints = np.maximum(line_alpha(periodic_distance(u, slab), 0.25, g),
                        line_alpha(periodic_distance(v, slab), 0.25, g))
    tile *= (1 - 0.12 * joints)[..., None]
    stain = fractal_noise(rng, h, w, 8 / g, 3)
    tile *= (1 - 0.25 * np.clip(stain - 0.65, 0, None) / 0.35)[..., None]
    blend(tile, line_alpha(vv - lane / 2, 0.45, g), YELLOW)  # taxilane centreline
    in_stands = (vv > lane) & ((vv < lane + depth) | (vv > lane + depth + road))
    blend(tile, line_alpha(periodic_distance(u, stand_w, stand_w / 2), 0.35, g) * in_stands,
          YELLOW)  # lead-in lines
    blend(tile, line_alpha(periodic_distance(u, stand_w), 0.4, g) * in_stands, (200, 60, 50))
    dashes = np.mod(u, 6.0) < 3.0
    for edge in (lane + depth, lane + depth + road):
        blend(tile, line_alpha(vv - edge, 0.35, g) * dashes, WHITE)
    u_lo, u_hi, v_lo, v_hi = uv_range(frame, x0, y0, x1, y1)
    for n in range(math.floor(v_lo / unit), math.ceil(v_hi / unit) + 1):
        base = n * unit
        rows = [(base + lane + depth / 2, 1.0), (base + lane + depth + road + depth / 2, -1.0)]
        for v_c, facing in rows:
            group, service = ground.new_group(), ground.new_group()
            for k in range(math.floor(u_lo / stand_w), math.ceil(u_hi / stand_w) + 1):
                u_c = (k + 0.5) * stand_w
                add_slot(ground, mask, frame, "aircraft", "stand", u_c, v_c, 0, facing,
                         depth - 3, stand_w - 3, group)
                add_slot(ground, mask, frame, "vehicle", "apron_service", u_c + 0.42 * stand_w,
                         v_c - facing * depth * 0.3, *((1, 0) if k % 2 else (0, 1)), 17, 3,
                         service)
        taxi = ground.new_group()
        u_t = rng.uniform(u_lo, u_hi)
        add_slot(ground, mask, frame, "aircraft", "taxi", u_t, base + lane / 2,
                 rng.choice([-1.0, 1.0]), 0, 80, lane + 30, taxi)
    _commit(ground, tile, x0, y0, sub)


def paint_parking(ground: Ground, mask: np.ndarray, frame: Frame) -> None:
    """A car park (aisles, stall rows nose +v / nose -v) or truck park; verges around it."""
    rng, g = ground.rng, ground.gsd
    x0, y0, x1, y1, sub = region_box(ground, mask)
    u, v = grid_uv(frame, x0, y0, x1, y1)
    lot = (np.abs(u) < rng.uniform(50, 120)) & (np.abs(v) < rng.uniform(35, 90))
    verge = mask.copy()
    verge[y0:y1, x0:x1] &= ~lot
    if verge.any():
        paint_grass(ground, verge, frame)
    mask = mask & ~verge
    if not mask.any():
        return
    x0, y0, x1, y1, sub = region_box(ground, mask)
    h, w = sub.shape
    trucks = rng.random() < 0.25
    aisle, stall_d, stall_w = (14.0, 18.0, 4.2) if trucks else (7.0, 5.2, 2.6)
    unit = aisle + 2 * stall_d
    tone = rng.uniform(70, 105)
    tile = material(rng, h, w, g, (tone, tone, tone * 1.02), 12, 6, 1.5)
    u, v = grid_uv(frame, x0, y0, x1, y1)
    vv = np.mod(v, unit)
    in_rows = vv > aisle
    blend(tile, line_alpha(periodic_distance(u, stall_w), 0.2, g) * in_rows, WHITE)
    blend(tile, line_alpha(vv - aisle - stall_d, 0.2, g), WHITE)
    u_lo, u_hi, v_lo, v_hi = uv_range(frame, x0, y0, x1, y1)
    setting = "truck_stall" if trucks else "stall"
    for n in range(math.floor(v_lo / unit), math.ceil(v_hi / unit) + 1):
        for v_c, facing in ((n * unit + aisle + stall_d / 2, 1.0),
                            (n * unit + aisle + 1.5 * stall_d, -1.0)):
            group = -1
            for k in range(math.floor(u_lo / stall_w), math.ceil(u_hi / stall_w) + 1):
                if k % 12 == 0 or group < 0:
                    group = ground.new_group()
                f = facing if rng.random() < 0.8 else -facing
                add_slot(ground, mask, frame, "vehicle", setting, (k + 0.5) * stall_w, v_c,
                         0, f, stall_d - 0.2, stall_w - 0.3, group)
    _commit(ground, tile, x0, y0, sub)


def paint_urban(ground: Ground, mask: np.ndarray, frame: Frame) -> None:
    """Street grid with dashed centrelines; blocks of buildings, parks and car lanes."""
    rng, g = ground.rng, ground.gsd
    x0, y0, x1, y1, sub = region_box(ground, mask)
    h, w = sub.shape
    bu, bv, street = rng.uniform(60, 110), rng.uniform(50, 90), rng.uniform(10, 15)
    tone = rng.uniform(75, 100)
    tile = material(rng, h, w, g, (tone, tone, tone), 10, 5, 1.5)
    u, v = grid_uv(frame, x0, y0, x1, y1)
    du, dv = np.mod(u, bu), np.mod(v, bv)
    block = (du > street) & (dv > street)
    kerb = (du > street - 2.5) & (dv > street - 2.5)
    blend(tile, kerb.astype(np.float32) * 0.8, (168, 165, 158))  # pavements
    yard = material(rng, h, w, g, (120, 118, 105), 20, 14, 2)
    tile[block] = yard[block]
    dash = (np.mod(u, 6) < 3) & ~kerb
    blend(tile, line_alpha(dv - street / 2, 0.2, g) * dash * (du > street), WHITE)
    blend(tile, line_alpha(du - street / 2, 0.2, g) * (np.mod(v, 6) < 3) * (dv > street), WHITE)
    u_lo, u_hi, v_lo, v_hi = uv_range(frame, x0, y0, x1, y1)
    origin = (x0, y0)
    for i in range(math.floor(u_lo / bu), math.ceil(u_hi / bu) + 1):
        for j in range(math.floor(v_lo / bv), math.ceil(v_hi / bv) + 1):
            ua, va = i * bu + street, j * bv + street
            _block(ground, tile, origin, sub, mask, frame, ua, ua + bu - street, va,
                   va + bv - street)
            for side, off in ((1, 0.28), (-1, 0.72)):  # car lanes, right-hand traffic
                grp = ground.new_group()
                for uc in np.arange(ua + 4, ua + bu - street - 4, rng.uniform(6.5, 9)):
                    add_slot(ground, mask, frame, "vehicle", "street", uc, j * bv + street * off,
                             -side, 0, 6.2, 2.6, grp)
                grp = ground.new_group()
                for vc in np.arange(va + 4, va + bv - street - 4, rng.uniform(6.5, 9)):
                    add_slot(ground, mask, frame, "vehicle", "street", i * bu + street * off, vc,
                             0, side, 6.2, 2.6, grp)
    _commit(ground, tile, x0, y0, sub)


def _block(ground: Ground, tile, origin, sub, mask, frame: Frame, u0, u1, v0, v1) -> None:
    rng = ground.rng
    centre = frame.xy((u0 + u1) / 2, (v0 + v1) / 2)
    if not all_inside(mask, centre[None]):
        return
    kind = rng.choice(["buildings", "park"], p=[0.85, 0.15])
    if kind == "park":
        pts = frame.xy(rng.uniform(u0, u1, 10), rng.uniform(v0, v1, 10))
        paint_rect(tile, frame, origin, (u0 + 1, u1 - 1, v0 + 1, v1 - 1), (80, 100, 58))
        add_trees(ground, tile, origin, sub, pts)
        return
    nu, nv = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    lu, lv = (u1 - u0) / nu, (v1 - v0) / nv
    for a in range(nu):
        for b in range(nv):
            if rng.random() < 0.12:
                continue
            bu0, bv0 = u0 + a * lu + rng.uniform(1, 4), v0 + b * lv + rng.uniform(1, 4)
            bu1, bv1 = u0 + (a + 1) * lu - rng.uniform(1, 4), v0 + (b + 1) * lv - rng.uniform(1, 4)
            if bu1 - bu0 < 6 or bv1 - bv0 < 6:
                continue
            roof = np.array(ROOF[int(rng.integers(len(ROOF)))], np.float32) * rng.uniform(0.85, 1.1)
            rect = rect_px(frame, bu0, bu1, bv0, bv1)
            fill_poly(tile, rect - origin - 0.5, tuple(float(c) for c in roof))
            if rng.random() < 0.5:  # pitched roof: the two slopes catch light differently
                vm = (bv0 + bv1) / 2
                paint_rect(tile, frame, origin, (bu0, bu1, vm, bv1),
                      tuple(float(c) * 0.78 for c in roof))
            else:  # flat roof: parapet rim and rooftop plant
                paint_rect(tile, frame, origin, (bu0 + 0.6, bu1 - 0.6, bv0 + 0.6, bv1 - 0.6),
                           tuple(float(c) * 1.08 for c in roof))
                for _ in range(int(rng.integers(0, 4))):
                    pu, pv = rng.uniform(bu0 + 2, bu1 - 4), rng.uniform(bv0 + 2, bv1 - 4)
                    paint_rect(tile, frame, origin, (pu, pu + 2, pv, pv + 1.5),
                          (200, 200, 200))
            ground.prisms.append((rect, float(rng.uniform(4, 25))))


PAINTERS = {"apron": paint_apron, "parking": paint_parking, "urban": paint_urban,
            "water": paint_water, "grass": paint_grass}

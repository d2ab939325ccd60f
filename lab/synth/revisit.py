"""Revisits of a real annotated image, and the radiometric/sensor helpers scenes share.

A revisit is the same ground seen again: the frame is translated by a sub-pixel shift of up to
``max_shift_px`` (``cv2.warpAffine``; output keeps the input size), so every object moves by
minus the shift and the footprint's origin moves by plus the shift — the ground coordinates of
an object are unchanged. Objects whose centre leaves the frame are dropped; the others are
clipped to the frame (and marked truncated when clipping cut them). The radiometry changes
(per-channel gain and offset, gamma), fresh sensor noise is added (Gaussian read noise plus
signal-dependent shot noise) and the result is re-encoded as JPEG at a random quality.

Border pixels uncovered by the shift are filled as no-data (black) by default, as at the edge of
a real scene; ``border="reflect"`` mirrors the image instead, which can show unannotated mirror
copies of objects near the edge.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import PurePath

import cv2
import numpy as np

from shared.annotations import AnnotatedImage, Footprint, ImageMeta, ObjectAnnotation
from shared.imageio import IMAGE_SUFFIXES, jpeg_roundtrip

_BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT,
            "replicate": cv2.BORDER_REPLICATE}


def radiometric_change(img: np.ndarray, rng: np.random.Generator, gain: tuple[float, float],
                       offset: tuple[float, float], gamma: tuple[float, float]) -> np.ndarray:
    """Per-channel gain and offset, then a gamma curve; float32 in, float32 [0, 255] out."""
    g = rng.uniform(*gain) * rng.uniform(0.97, 1.03, 3)
    o = rng.uniform(*offset) + rng.uniform(-2.0, 2.0, 3)
    out = np.clip(img * g.astype(np.float32) + o.astype(np.float32), 0, 255) / 255.0
    return (np.power(out, np.float32(rng.uniform(*gamma))) * 255.0).astype(np.float32)


def sensor_noise(img: np.ndarray, rng: np.random.Generator, sigma: float,
                 shot: float = 0.05) -> np.ndarray:
    """Gaussian read noise of ``sigma`` plus shot noise whose variance grows with the signal."""
    if sigma <= 0 and shot <= 0:
        return img
    std = np.sqrt(sigma * sigma + shot * np.clip(img, 0, None))
    return img + std * rng.standard_normal(img.shape, dtype=np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def clip_to_frame(poly: np.ndarray, width: float, height: float) -> np.ndarray | None:
    """Sutherland-Hodgman clip of a polygon to [0, width] x [0, height]; None when empty."""
    pts = [tuple(p) for p in np.asarray(poly, np.float64)]
    edges = [(0, 0.0, 1), (0, float(width), -1), (1, 0.0, 1), (1, float(height), -1)]
    for axis, bound, sign in edges:
        out: list[tuple[float, float]] = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cur_in, prev_in = sign * (cur[axis] - bound) >= 0, sign * (prev[axis] - bound) >= 0
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
        pts = out
        if len(pts) < 3:
            return None
    return np.array(pts, np.float64)


def frame_objects(objects: list[ObjectAnnotation], dx: float, dy: float, width: int,
                  height: int) -> list[ObjectAnnotation]:
    """Objects moved by (-dx, -dy); centre outside the frame: dropped; crossing it: clipped."""
    kept = []
    for obj in objects:
        moved = obj.translated(-dx, -dy)
        cx, cy = moved.centre
        if not (0 <= cx < width and 0 <= cy < height):
            continue
        lo, hi = moved.polygon.min(axis=0), moved.polygon.max(axis=0)
        if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height:
            kept.append(moved)
            continue
        clipped = clip_to_frame(moved.polygon, width, height)
        if clipped is not None:
            kept.append(replace(moved, polygon=clipped, truncated=True))
    return kept


def _stem(image_id: str) -> str:
    path = PurePath(image_id)
    return image_id[: -len(path.suffix)] if path.suffix.lower() in IMAGE_SUFFIXES else image_id


def revisit_real(image: AnnotatedImage, n: int, seed: int, max_shift_px: int = 32,
                 jpeg_quality: tuple[int, int] = (70, 95), noise_sigma: float = 2.0,
                 border: str = "constant", hours_apart: tuple[float, float] = (2.0, 48.0),
                 ) -> list[AnnotatedImage]:
    """``n`` simulated revisits of ``image``: shifted, re-lit, noisier, JPEG re-encoded.

    Revisit ``k`` is ``f"{stem}_rev{k:02d}"`` (image suffix dropped), in the input's sequence
    (or a sequence named after the input's image id). ``extra["shift_px"]`` is the applied
    (dx, dy): revisit pixel (x, y) shows input pixel (x + dx, y + dy).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not (math.isfinite(max_shift_px) and max_shift_px >= 0):
        raise ValueError(f"max_shift_px must be >= 0, got {max_shift_px}")
    lo_q, hi_q = jpeg_quality
    if not 1 <= lo_q <= hi_q <= 100:
        raise ValueError(f"jpeg_quality must be (lo, hi) with 1 <= lo <= hi <= 100, got "
                         f"{jpeg_quality}")
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {sorted(_BORDERS)}, got {border!r}")
    rng = np.random.default_rng(seed)
    src = image.load_pixels().astype(np.float32)
    meta = image.meta
    h, w = src.shape[:2]
    base_fp = meta.footprint or Footprint((0.0, meta.gsd_m or 1.0, 0.0, 0.0, 0.0,
                                           -(meta.gsd_m or 1.0)))
    when = None
    if meta.capture_time:
        try:
            when = datetime.fromisoformat(meta.capture_time.replace("Z", "+00:00"))
        except ValueError:
            when = None
    out = []
    for k in range(n):
        dx, dy = (float(v) for v in rng.uniform(-max_shift_px, max_shift_px, 2))
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        img = cv2.warpAffine(src, m, (w, h), flags=flags, borderMode=_BORDERS[border])
        img = radiometric_change(img, rng, (0.85, 1.15), (-12.0, 12.0), (0.85, 1.15))
        img = sensor_noise(img, rng, noise_sigma)
        if border == "constant":
            valid = cv2.warpAffine(np.ones((h, w), np.float32), m, (w, h), flags=flags,
                                   borderMode=cv2.BORDER_CONSTANT)
            img *= valid[..., None]
        quality = int(rng.integers(lo_q, hi_q + 1))
        pixels = jpeg_roundtrip(to_uint8(img), quality)
        if when is not None:
            when = when + timedelta(hours=float(rng.uniform(*hours_apart)))
        extra = dict(meta.extra)
        extra.update({"revisit_of": meta.image_id, "shift_px": [dx, dy], "seed": int(seed),
                      "jpeg_quality": quality})
        new_meta = ImageMeta(image_id=f"{_stem(meta.image_id)}_rev{k:02d}", width=w, height=h,
                             gsd_m=meta.gsd_m, footprint=base_fp.shifted(dx, dy),
                             capture_time=when.isoformat() if when is not None else None,
                             source=meta.source, sequence=meta.sequence or meta.image_id,
                             extra=extra)
        out.append(AnnotatedImage(new_meta, frame_objects(image.objects, dx, dy, w, h),
                                  path=None, pixels=pixels))
    return out

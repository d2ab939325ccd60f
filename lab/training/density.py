"""Training targets for the counters: a density map and an object mask per image.

Density: every object adds a 2-D Gaussian at its centre whose sigma grows with the object's
size (``sigma = sigma_factor * sqrt(area)``, at least ``min_sigma`` px), so a large aircraft's
mass spreads over its body instead of sitting on one pixel a network cannot localise. Each
Gaussian is normalised over the part inside the image, so the map of a scene sums exactly to
its object count even for objects cut by the border. The count of any window is then the sum
of the map over it (a tile's share of an object cut by the tile edge is fractional).

Mask: the objects' polygons filled, the target of the mask head (soft Jaccard loss).
Both are built at the counter's input resolution (``scale`` = source px per input px, inverted).
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.annotations import ObjectAnnotation


def density_map(objects: list[ObjectAnnotation], width: int, height: int, scale: float = 1.0,
                sigma_factor: float = 0.2, min_sigma: float = 1.5) -> np.ndarray:
    """float32 (H, W) density at ``scale`` x the source resolution; sums to len(objects)."""
    out = np.zeros((height, width), np.float32)
    for obj in objects:
        cx, cy = (c * scale for c in obj.centre)
        cx, cy = min(max(cx, 0.0), width - 1e-3), min(max(cy, 0.0), height - 1e-3)
        sigma = max(min_sigma, sigma_factor * np.sqrt(max(obj.area, 1.0)) * scale)
        r = int(np.ceil(3 * sigma))
        x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, width)
        y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, height)
        xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
        ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy
        g = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma * sigma))
        total = g.sum()
        if total > 0:
            out[y0:y1, x0:x1] += g / total
    return out


def object_mask(objects: list[ObjectAnnotation], width: int, height: int,
                scale: float = 1.0, supersample: int = 4) -> np.ndarray:
    """uint8 (H, W): 1 where at least half of a pixel lies inside an object polygon.

    OpenCV fills every pixel its outline touches (one pixel too fat all round), so the
    polygons are drawn at ``supersample`` x resolution and the coverage averaged back.
    """
    k = supersample
    fine = np.zeros((height * k, width * k), np.uint8)
    # OpenCV's integer coordinate i is the centre of pixel i, i.e. our i + 0.5.
    polys = [np.round((o.polygon * scale * k - 0.5) * 8).astype(np.int32) for o in objects]
    if not polys:
        return np.zeros((height, width), np.uint8)
    cv2.fillPoly(fine, polys, 1, lineType=cv2.LINE_8, shift=3)  # 1/8 px precision
    coverage = fine.reshape(height, k, width, k).mean(axis=(1, 3))
    return (coverage >= 0.5).astype(np.uint8)


def sum_pool(density: np.ndarray, factor: int) -> np.ndarray:
    """Downsample a density map by summing factor x factor blocks (keeps the integral)."""
    h, w = density.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.zeros((hp, wp), density.dtype)
    padded[:h, :w] = density
    return padded.reshape(hp // factor, factor, wp // factor, factor).sum(axis=(1, 3))

"""Scene and tile geometry in ground coordinates, and the affine forms STAC and GDAL use.

A scene's :class:`~shared.annotations.Footprint` holds a GDAL-order geotransform
``(x0, xres, xrot, y0, yrot, yres)``; STAC's ``proj:transform`` (and rasterio's ``Affine``)
writes the same six numbers as ``[xres, xrot, x0, yrot, yres, y0]`` (optionally followed by
``0, 0, 1``). Tile outlines are the grid's cells (``shared.tile_grid``: row-major, partial at
the last row and column) mapped through the geotransform, as closed GeoJSON rings in the
scene's CRS; reprojection to WGS84 is left to the caller (pyproj on the ground, GDAL onboard),
so this module needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

GeoTransform = tuple[float, float, float, float, float, float]

_EPSG = re.compile(r"^\s*EPSG:(\d{1,6})\s*$", re.IGNORECASE)


def from_stac_transform(t: Sequence[float]) -> GeoTransform:
    """GDAL order from a STAC ``proj:transform`` (6 numbers, or 9 with ``0, 0, 1`` last)."""
    if len(t) not in (6, 9):
        raise ValueError(f"proj:transform needs 6 or 9 numbers, got {len(t)}")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in t):
        raise ValueError("proj:transform holds a value that is not a finite number")
    if len(t) == 9 and list(t[6:]) != [0, 0, 1]:
        raise ValueError("proj:transform's last row must be 0, 0, 1")
    a, b, c, d, e, f = (float(v) for v in t[:6])
    return c, a, b, f, d, e


def to_stac_transform(gt: Sequence[float]) -> list[float]:
    """A STAC ``proj:transform`` (6 numbers) from a GDAL-order geotransform."""
    x0, xres, xrot, y0, yrot, yres = (float(v) for v in gt)
    return [xres, xrot, x0, yrot, yres, y0]


def epsg_code(crs: str | None) -> int | None:
    """The EPSG number of a CRS written ``EPSG:<n>``; None for anything else ("local", WKT)."""
    m = _EPSG.match(crs or "")
    return int(m.group(1)) if m else None


def _apply(gt: Sequence[float], x: float, y: float) -> list[float]:
    return [gt[0] + x * gt[1] + y * gt[2], gt[3] + x * gt[4] + y * gt[5]]


def pixel_ring(gt: Sequence[float], x0: float, y0: float, x1: float, y1: float
               ) -> list[list[float]]:
    """The pixel rectangle [x0, x1] x [y0, y1] as a closed ground-coordinate ring,
    counter-clockwise on a north-up image (GeoJSON's winding for exterior rings)."""
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]
    ring = [_apply(gt, x, y) for x, y in corners]
    if _signed_area(ring) < 0:  # a south-up or mirrored transform: keep it counter-clockwise
        ring.reverse()
    return [*ring, ring[0]]


def scene_ring(gt: Sequence[float], width: int, height: int) -> list[list[float]]:
    return pixel_ring(gt, 0, 0, width, height)


def tile_boxes(width: int, height: int, tile_size: int, rows: int, cols: int
               ) -> list[tuple[int, int, int, int, int, int]]:
    """(row, col, x0, y0, x1, y1) in pixels of each tile, in index order (row-major; the
    last row and column are partial where the scene is not a whole number of tiles)."""
    out = []
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * tile_size, r * tile_size
            out.append((r, c, x0, y0, min(x0 + tile_size, width), min(y0 + tile_size, height)))
    return out


def bbox(rings: Sequence[Sequence[Sequence[float]]]) -> list[float]:
    """[minx, miny, maxx, maxy] of some rings."""
    xs = [p[0] for ring in rings for p in ring]
    ys = [p[1] for ring in rings for p in ring]
    return [min(xs), min(ys), max(xs), max(ys)]


def _signed_area(ring: Sequence[Sequence[float]]) -> float:
    return sum(ring[i][0] * ring[(i + 1) % len(ring)][1]
               - ring[(i + 1) % len(ring)][0] * ring[i][1] for i in range(len(ring))) / 2

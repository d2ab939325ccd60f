"""The one object model every stage shares: an annotated image.

An :class:`AnnotatedImage` is pixels (held, or read lazily from a path), image metadata
(:class:`ImageMeta`: size, ground sample distance and ground footprint when known, capture
time, the sequence it belongs to) and a list of :class:`ObjectAnnotation` (class name and
polygon; the axis-aligned box and the centre point are derived from the polygon).

Coordinates are floating-point pixel positions in the continuous image plane: the top-left
corner of the top-left pixel is (0, 0), x grows right, y grows down, so a W x H image spans
[0, W] x [0, H]. Pixels are RGB ``uint8`` arrays of shape (H, W, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from shared.imageio import read_rgb


@dataclass(frozen=True)
class Footprint:
    """Where an image lies on the ground: a GDAL-order affine geotransform and its CRS.

    ``ground_x = gt[0] + col * gt[1] + row * gt[2]``,
    ``ground_y = gt[3] + col * gt[4] + row * gt[5]``.
    Two captures of the same place share ground coordinates, which is what lets later
    stages recognise a revisit whatever the pixel shift between captures.
    """

    geotransform: tuple[float, float, float, float, float, float]
    crs: str = "local"

    def __post_init__(self) -> None:
        if len(self.geotransform) != 6:
            raise ValueError(f"geotransform needs 6 numbers, got {len(self.geotransform)}")
        gt = tuple(float(v) for v in self.geotransform)
        if not all(np.isfinite(gt)):
            raise ValueError(f"geotransform has a non-finite value: {gt}")
        if gt[1] * gt[5] - gt[2] * gt[4] == 0:
            raise ValueError(f"geotransform is singular: {gt}")
        object.__setattr__(self, "geotransform", gt)

    def pixel_to_ground(self, x: float, y: float) -> tuple[float, float]:
        g = self.geotransform
        return g[0] + x * g[1] + y * g[2], g[3] + x * g[4] + y * g[5]

    def ground_to_pixel(self, gx: float, gy: float) -> tuple[float, float]:
        g = self.geotransform
        det = g[1] * g[5] - g[2] * g[4]
        dx, dy = gx - g[0], gy - g[3]
        return (dx * g[5] - dy * g[2]) / det, (dy * g[1] - dx * g[4]) / det

    def shifted(self, dx_px: float, dy_px: float) -> Footprint:
        """The footprint of an image whose pixel (0, 0) lies at this one's (dx_px, dy_px)."""
        g = self.geotransform
        x0, y0 = self.pixel_to_ground(dx_px, dy_px)
        return Footprint((x0, g[1], g[2], y0, g[4], g[5]), self.crs)

    def to_dict(self) -> dict[str, Any]:
        return {"geotransform": list(self.geotransform), "crs": self.crs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Footprint:
        return cls(tuple(data["geotransform"]), str(data.get("crs", "local")))


@dataclass(frozen=True)
class ObjectAnnotation:
    """One annotated object: its class and its outline as a polygon of (x, y) pixel points."""

    class_name: str
    polygon: np.ndarray  # (N, 2) float64, N >= 3 for areas; boxes are 4-corner polygons
    difficult: bool = False
    truncated: bool = False

    def __post_init__(self) -> None:
        poly = np.asarray(self.polygon, dtype=np.float64).reshape(-1, 2)
        # A closed ring repeats its first point; keep each corner once.
        if len(poly) > 3 and np.allclose(poly[0], poly[-1]):
            poly = poly[:-1]
        if len(poly) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(poly)}")
        if not np.all(np.isfinite(poly)):
            raise ValueError("polygon has a non-finite coordinate")
        if not self.class_name:
            raise ValueError("class name is empty")
        poly.setflags(write=False)
        object.__setattr__(self, "polygon", poly)

    @classmethod
    def from_box(cls, class_name: str, xmin: float, ymin: float, xmax: float, ymax: float,
                 **kwargs: Any) -> ObjectAnnotation:
        if xmax <= xmin or ymax <= ymin:
            raise ValueError(f"empty box ({xmin}, {ymin}, {xmax}, {ymax})")
        corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
        return cls(class_name, np.array(corners, dtype=np.float64), **kwargs)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned bounding box (xmin, ymin, xmax, ymax)."""
        lo = self.polygon.min(axis=0)
        hi = self.polygon.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def area(self) -> float:
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)

    @property
    def centre(self) -> tuple[float, float]:
        """Area centroid of the polygon (vertex mean when the polygon is degenerate)."""
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        xn, yn = np.roll(x, -1), np.roll(y, -1)
        cross = x * yn - xn * y
        a2 = cross.sum()  # twice the signed area
        if abs(a2) < 1e-9:
            return float(x.mean()), float(y.mean())
        cx = ((x + xn) * cross).sum() / (3 * a2)
        cy = ((y + yn) * cross).sum() / (3 * a2)
        return float(cx), float(cy)

    @property
    def size_px(self) -> float:
        """Characteristic size: the longer side of the bounding box, in pixels."""
        xmin, ymin, xmax, ymax = self.box
        return max(xmax - xmin, ymax - ymin)

    def translated(self, dx: float, dy: float) -> ObjectAnnotation:
        return replace(self, polygon=self.polygon + np.array([dx, dy]))

    def scaled(self, sx: float, sy: float) -> ObjectAnnotation:
        return replace(self, polygon=self.polygon * np.array([sx, sy]))


@dataclass
class ImageMeta:
    """What is known about an image besides its pixels."""

    image_id: str
    width: int
    height: int
    gsd_m: float | None = None  # ground sample distance, metres per pixel
    footprint: Footprint | None = None
    capture_time: str | None = None  # ISO 8601
    source: str | None = None  # sensor or provider (DOTA's imagesource)
    sequence: str | None = None  # frames that overlap share one; splits never divide it
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if self.gsd_m is not None and not (np.isfinite(self.gsd_m) and self.gsd_m > 0):
            raise ValueError(f"gsd must be a positive number of metres, got {self.gsd_m}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image_id": self.image_id, "width": self.width,
                               "height": self.height}
        for key in ("gsd_m", "capture_time", "source", "sequence"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.footprint is not None:
            out["footprint"] = self.footprint.to_dict()
        if self.extra:
            out["extra"] = self.extra
        return out


@dataclass
class AnnotatedImage:
    """Pixels (held or read on demand from ``path``), metadata and objects."""

    meta: ImageMeta
    objects: list[ObjectAnnotation]
    path: Path | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.pixels is not None:
            h, w = self.pixels.shape[:2]
            if (w, h) != (self.meta.width, self.meta.height):
                raise ValueError(f"pixels are {w}x{h} but metadata says "
                                 f"{self.meta.width}x{self.meta.height}")

    @property
    def image_id(self) -> str:
        return self.meta.image_id

    def load_pixels(self) -> np.ndarray:
        """RGB uint8 (H, W, 3); read from ``path`` (not cached) when not held."""
        if self.pixels is not None:
            return self.pixels
        if self.path is None:
            raise ValueError(f"image {self.image_id!r} has neither pixels nor a path")
        return read_rgb(self.path)

    def count(self, classes: set[str] | None = None) -> int:
        return sum(1 for o in self.objects if classes is None or o.class_name in classes)

    def class_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.objects:
            out[o.class_name] = out.get(o.class_name, 0) + 1
        return dict(sorted(out.items()))


@dataclass
class Dataset:
    """Annotated images read from (or to be written to) one folder in one format."""

    images: list[AnnotatedImage]
    class_names: list[str]
    root: Path | None = None
    fmt: str | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    def class_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for img in self.images:
            for name, n in img.class_counts().items():
                out[name] = out.get(name, 0) + n
        return dict(sorted(out.items()))

    def total(self, classes: set[str] | None = None) -> int:
        return sum(img.count(classes) for img in self.images)

"""A scene's pixels, within the memory the settings allow, not the memory the scene needs.

``open_scene`` gives the worker something it can slice like an RGB array for as long as a
scene is processed, under a GDAL block cache of ``settings.gdal_cache()``:

* a GeoTIFF is read window by window (``RasterSource``): no more than one tile's pixels are
  in memory at a time;
* PNG and JPEG have no random access: a small one (its RGB under 1/16 of the memory limit)
  is decoded whole; a larger one is decoded strip by strip into a tiled scratch TIFF
  (``onboard.strips``), read the same way and deleted after, except interlaced PNGs and
  progressive JPEGs, which only decode whole (the intake holds them to
  ``whole_decode_pixels``).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from onboard.georeference import georeference_of
from onboard.settings import OnboardSettings
from shared.annotations import Footprint
from shared.imageio import decodable_by_rows, header_size, read_rgb


class RasterSource:
    """A GeoTIFF read window by window: ``shape`` and 2-D slicing like an RGB array, so the
    pipeline can crop tiles from a scene far larger than memory. Tracks the largest window it
    was asked for (the bound on what is in memory at once)."""

    def __init__(self, path: Path):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        with warnings.catch_warnings():  # a plain TIFF is fine: georeference() says None
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.src = rasterio.open(path)
        if self.src.dtypes[0] != "uint8":
            self.src.close()
            raise ValueError(f"GeoTIFF pixels must be 8-bit, got {self.src.dtypes[0]}")
        self.indexes = [1, 2, 3] if self.src.count >= 3 else [1, 1, 1]
        self.shape = (self.src.height, self.src.width, 3)
        self.largest_window_px = 0

    def __getitem__(self, key) -> np.ndarray:
        from rasterio.windows import Window

        ys, xs = key
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        self.largest_window_px = max(self.largest_window_px, (y1 - y0) * (x1 - x0))
        bands = self.src.read(indexes=self.indexes, window=Window(x0, y0, x1 - x0, y1 - y0))
        # Band-interleaved to pixel-interleaved: cv2.merge gives the same array as a
        # contiguous copy of the transpose, about 5x faster (every tile is read through here).
        return cv2.merge(list(bands))

    def georeference(self) -> tuple[Footprint | None, float | None]:
        """The file's own footprint and GSD (metres, projected CRS only), when it has them."""
        return georeference_of(self.src)

    def close(self) -> None:
        self.src.close()


def read_scene(path: Path):
    """The scene's pixels: a window-by-window reader for GeoTIFF, a decoded array otherwise."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return RasterSource(path)
    return read_rgb(path)


def strip_decoded(path: Path, settings: OnboardSettings) -> bool:
    """Whether a PNG or JPEG is decoded strip by strip rather than whole: when it can be,
    and its RGB would take more than 1/16 of the memory limit (smaller ones decode whole:
    faster, and well inside the limit)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return False
    size = header_size(path)
    return size is not None and size[0] * size[1] * 3 > settings.memory_limit_bytes // 16 \
        and decodable_by_rows(path)


@contextmanager
def open_scene(path: Path, settings: OnboardSettings, scratch: Path) -> Iterator:
    """The scene's pixels for as long as the block runs, under a GDAL block cache of
    ``settings.gdal_cache()``: a window-by-window reader (GeoTIFF, or a large PNG or JPEG
    decoded by strips into a scratch TIFF in ``scratch``, deleted after), or a decoded
    array (a small PNG or JPEG)."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=settings.gdal_cache()):
        path = Path(path)
        if not strip_decoded(path, settings):
            pixels = read_scene(path)
            try:
                yield pixels
            finally:
                if isinstance(pixels, RasterSource):
                    pixels.close()
            return
        from onboard.strips import transcode

        scratch.mkdir(parents=True, exist_ok=True)
        tmp = transcode(path, scratch / f"{path.stem}-{threading.get_ident()}.strips.tif")
        try:
            source = RasterSource(tmp)
            try:
                yield source
            finally:
                source.close()
        finally:
            tmp.unlink(missing_ok=True)

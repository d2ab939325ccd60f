"""PNG and JPEG scenes larger than memory: decoded strip by strip into a tiled scratch TIFF.

PNG and JPEG have no random access: a tile in the middle cannot be decoded without the rows
above it. Planning reads tiles in context order, not row order, so a large PNG or JPEG is
decoded once, top to bottom, ``STRIP`` rows at a time (GDAL's PNG and JPEG drivers decode by
scanlines: only the strip being copied is in memory), into an uncompressed tiled TIFF next
to the scene, which is then read window by window like any GeoTIFF and deleted after the
scene. What can be decoded this way is decided from the header before the upload is
accepted (``shared.imageio.decodable_by_rows``): a non-interlaced PNG and a sequential
(baseline or extended) JPEG; an interlaced PNG or a progressive JPEG needs the whole image
(or all its coefficients) at once, so it is decoded whole and held to the memory-derived
limit (``OnboardSettings.whole_decode_pixels``).

Pixels are what OpenCV's whole decode gives: RGB from RGB(A), grey repeated in three
channels, palettes expanded, 16-bit samples shifted to 8 bits. A PNG's are identical; a
JPEG's come from GDAL's libjpeg, whose IDCT rounding and chroma upsampling differ a little
from OpenCV's (a mean of 0.14 grey levels on a generated scene, more at colour edges), so a
strip-decoded JPEG's counts can differ slightly from the same file decoded whole.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

STRIP = 256  # rows decoded at once, and the scratch TIFF's block size


def _rgb_bands(src, bands: np.ndarray) -> np.ndarray:
    """(bands, h, w) as read -> (3, h, w) uint8 RGB planes, as OpenCV's IMREAD_COLOR decodes
    them (band-first, as the scratch TIFF is written: no interleaved copy in between)."""
    if bands.dtype == np.uint16:
        bands = (bands >> 8).astype(np.uint8)
    if src.count == 1 or src.count == 2:  # grey, or grey and alpha
        first = bands[0]
        try:
            cmap = src.colormap(1)
        except ValueError:  # no palette
            cmap = None
        if cmap:
            lut = np.zeros((3, 256), np.uint8)
            for k, rgba in cmap.items():
                lut[:, k] = rgba[:3]
            return lut[:, first]
        return np.broadcast_to(first, (3, *first.shape))
    return bands[:3]


def transcode(path: Path, out: Path) -> Path:
    """Decode ``path`` (PNG or JPEG) top to bottom into a tiled, uncompressed TIFF ``out``
    holding the same RGB pixels; a partial file is removed when decoding fails."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.dtypes[0] not in ("uint8", "uint16"):
                    raise ValueError(f"{src.dtypes[0]} samples are not decoded here")
                n = min(src.count, 3)
                with rasterio.open(out, "w", driver="GTiff", width=src.width,
                                   height=src.height, count=3, dtype="uint8", tiled=True,
                                   blockxsize=STRIP, blockysize=STRIP,
                                   BIGTIFF="IF_SAFER") as dst:
                    for y in range(0, src.height, STRIP):
                        h = min(STRIP, src.height - y)
                        rows = src.read(indexes=list(range(1, n + 1)),
                                        window=Window(0, y, src.width, h))
                        dst.write(_rgb_bands(src, rows),
                                  window=Window(0, y, src.width, h))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out

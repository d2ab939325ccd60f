"""Large benchmark scenes made from real ones, written without holding them in memory.

Real Airbus scenes (2560 x 2560 px, 0.5 m; all 75) are laid out k x k into a scene of
``k * 2560`` px a side, each used once before any repeats, and a repeat mirrored or flipped
(so up to 300 pieces are all different pixels: deduplication finds what it would in one
large real scene, not copies).
A GeoTIFF is written window by window (tiled 512 px, georeferenced at 0.5 m in UTM), so a
40k x 40k one never exists in memory; PNG and JPEG have to be encoded whole, so those are
made from the GeoTIFF by GDAL's CreateCopy (which streams rows). Files are cached by name in
the work folder (outside the repository).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENE = 2560


def real_scenes(count: int = 75) -> list[np.ndarray]:
    from lab.data.realdev import load_real

    images = load_real("airbus_aircraft").images[:count]
    return [np.ascontiguousarray(img.load_pixels()[:SCENE, :SCENE]) for img in images]


def _piece(scenes: list[np.ndarray], r: int, c: int, k: int) -> np.ndarray:
    n = r * k + c
    s = scenes[n % len(scenes)]
    variant = (n // len(scenes)) % 4  # as is, mirrored, flipped, both
    return s[::-1 if variant >= 2 else 1, ::-1 if variant % 2 else 1]


def geotiff(path: Path, k: int, scenes: list[np.ndarray]) -> Path:
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    side = k * SCENE
    tmp = path.with_suffix(".partial.tif")
    with rasterio.Env(GDAL_CACHEMAX=64 * 1024 * 1024), rasterio.open(
            tmp, "w", driver="GTiff", width=side, height=side, count=3, dtype="uint8",
            crs="EPSG:32631", tiled=True, blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER",
            transform=Affine(0.5, 0, 500000.0, 0, -0.5, 4500000.0)) as dst:
        for r in range(k):
            for c in range(k):
                dst.write(_piece(scenes, r, c, k).transpose(2, 0, 1),
                          window=Window(c * SCENE, r * SCENE, SCENE, SCENE))
    tmp.rename(path)
    return path


def converted(tif: Path, path: Path, driver: str) -> Path:
    """PNG or JPEG (quality 90) of a GeoTIFF's pixels, streamed by GDAL."""
    import rasterio
    from rasterio.shutil import copy

    options = {"QUALITY": 90} if driver == "JPEG" else {"ZLEVEL": 1}
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    with rasterio.Env(GDAL_CACHEMAX=64 * 1024 * 1024, GDAL_PAM_ENABLED="NO"):
        copy(tif, tmp, driver=driver, **options)
    for extra in tmp.parent.glob(tmp.name + ".aux.xml"):
        extra.unlink()
    tmp.rename(path)
    return path


def scene_file(work: Path, fmt: str, k: int, scenes: list[np.ndarray] | None = None) -> Path:
    """The k x k scene in ``fmt`` ("tif", "png", "jpg"), made once."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"airbus-{k}x{k}.{fmt}"
    if path.exists():
        return path
    tif = work / f"airbus-{k}x{k}.tif"
    if not tif.exists():
        geotiff(tif, k, scenes if scenes is not None else real_scenes())
    if fmt == "tif":
        return tif
    return converted(tif, path, {"png": "PNG", "jpg": "JPEG"}[fmt])

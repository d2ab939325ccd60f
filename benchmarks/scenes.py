"""Large benchmark scenes made from real ones, written without holding them in memory.

Real Airbus scenes (2560 x 2560 px, 0.5 m; all 75) are laid out k x k into a scene of
``k * 2560`` px a side, each used once before any repeats, and a repeat mirrored or flipped
(so up to 300 pieces are all different pixels: deduplication finds what it would in one
large real scene, not copies).
A GeoTIFF is written window by window (tiled 512 px, georeferenced at 0.5 m in UTM), so a
40k x 40k one never exists in memory; PNG and JPEG have to be encoded whole, so those are
made from the GeoTIFF by GDAL's CreateCopy (which streams rows). Files are cached by name in
the work folder (outside the repository).

On a fresh clone without the real-dev data (``$TARGETFUSE_REAL_DEV`` or ``../shared``), the
pieces are cut from the shipped ``samples/aircraft-pleiades.jpg`` (real Pleiades, 0.5 m,
1280 px: each piece 2 x 2 of its mirrored copies), and, failing that, generated (seeded
smooth noise with bright blobs); ``source()`` says which, and files are named by it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENE = 2560


def source() -> str:
    """Where the pieces come from: "airbus" (real-dev data present), "sample" (the shipped
    Pleiades sample), else "generated"."""
    from lab.data.realdev import real_dev_root
    from shared.paths import PROJECT_ROOT

    if (real_dev_root() / "airbus_aircraft" / "annotations.csv").exists():
        return "airbus"
    if (PROJECT_ROOT / "samples" / "aircraft-pleiades.jpg").exists():
        return "sample"
    return "generated"


def real_scenes(count: int = 75) -> list[np.ndarray]:
    """Up to ``count`` different 2560 px pieces from ``source()`` (all 75 real ones at most)."""
    kind = source()
    if kind == "airbus":
        from lab.data.realdev import load_real

        images = load_real("airbus_aircraft").images[:count]
        return [np.ascontiguousarray(img.load_pixels()[:SCENE, :SCENE]) for img in images]
    if kind == "sample":
        from shared.imageio import read_rgb
        from shared.paths import PROJECT_ROOT

        img = read_rgb(PROJECT_ROOT / "samples" / "aircraft-pleiades.jpg")
        half = SCENE // 2
        img = np.ascontiguousarray(img[:half, :half])
        piece = np.concatenate([np.concatenate([img, img[:, ::-1]], 1),
                                np.concatenate([img[::-1], img[::-1, ::-1]], 1)], 0)
        return [piece]
    rng = np.random.default_rng(0)
    base = rng.normal(110, 25, (SCENE // 16, SCENE // 16, 3))
    img = np.kron(base, np.ones((16, 16, 1)))
    for _ in range(400):
        y, x = rng.integers(0, SCENE - 24, 2)
        img[y:y + rng.integers(6, 24), x:x + rng.integers(6, 24)] += rng.uniform(60, 120)
    return [np.clip(img, 0, 255).astype(np.uint8)]


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
    kind = source()
    path = work / f"{kind}-{k}x{k}.{fmt}"
    if path.exists():
        return path
    tif = work / f"{kind}-{k}x{k}.tif"
    if not tif.exists():
        # Only the pieces a k x k scene uses (all 75 at most): a 5k scene needs 4.
        geotiff(tif, k, scenes if scenes is not None else real_scenes(min(75, k * k)))
    if fmt == "tif":
        return tif
    return converted(tif, path, {"png": "PNG", "jpg": "JPEG"}[fmt])

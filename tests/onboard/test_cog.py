"""A Cloud-Optimized GeoTIFF, made by the command the docs give, is read window by window at
the tiling's native size: every window the onboard side asks for is one of the grid's tiles,
each one internal block of the COG, and nothing else is read."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from onboard.link.outbox import Outbox
from onboard.processing import SceneProcessor
from onboard.scene_pixels import RasterSource
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings

RIO = Path(sys.executable).with_name("rio")


def make_cog(tmp_path: Path, block: int, width=1024, height=768) -> tuple[Path, np.ndarray]:
    """A plain (striped) GeoTIFF of a synthetic scene, then the docs' rio-cogeo command."""
    img = generate_scene(SceneConfig(width=width, height=height, gsd_m=0.5, layout="airport",
                                     classes=("aircraft",)), seed=3)
    pixels = img.load_pixels()
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint8", crs="EPSG:32632",
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5540000.0)) as dst:
        dst.write(pixels.transpose(2, 0, 1))
    cog = tmp_path / "scene.cog.tif"
    subprocess.run([str(RIO), "cogeo", "create", str(plain), str(cog), "--blocksize",
                    str(block), "--overview-blocksize", str(block)], check=True,
                   capture_output=True, timeout=120)
    return cog, pixels


@pytest.mark.skipif(not RIO.exists() and shutil.which("rio") is None,
                    reason="rio-cogeo is not installed (the dev extra has it)")
def test_a_cog_is_read_one_native_tile_window_at_a_time(tmp_path, monkeypatch):
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "ob")
    counter = OnboardCounter.shipped(settings.model)
    box = Outbox(tmp_path / "o.db")
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    size = proc.rule.first(0.5)  # the tiling's native size at this GSD
    cog, pixels = make_cog(tmp_path, size)
    check = subprocess.run([str(RIO), "cogeo", "validate", str(cog)], capture_output=True,
                           text=True, timeout=60)
    assert "is a valid cloud optimized GeoTIFF" in check.stdout
    with rasterio.open(cog) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (size, size)
        assert src.overviews(1)  # with overviews, which the counter never needs

    # Record every window the onboard side reads, by wrapping the real reader's slicing.
    windows = []
    read = RasterSource.__getitem__

    def recording(self, key):
        ys, xs = key
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        windows.append((x0, y0, x1, y1))
        return read(self, key)

    monkeypatch.setattr(RasterSource, "__getitem__", recording)
    result = proc.process("cog", str(cog), {})
    box.close()
    assert result["tile_size"] == size and result["gsd_source"] == "file"
    h, w = pixels.shape[:2]
    grid = {(x, y, min(x + size, w), min(y + size, h))
            for y in range(0, h, size) for x in range(0, w, size)}
    assert len(grid) == result["tiles"]
    # Only the grid's tiles, each exactly one internal block of the COG: no window spans
    # blocks, none reaches outside the scene, none is a whole-scene read.
    assert set(windows) == grid
    assert all(x0 % size == 0 and y0 % size == 0 for x0, y0, _, _ in windows)
    # And the windows hold the scene's pixels, as a whole decode would.
    with rasterio.open(cog) as src:
        whole = src.read().transpose(1, 2, 0)
    assert np.array_equal(whole, pixels)

"""Streaming onboard processing: a large scene read in bounded windows plans exactly as the
same pixels held whole; large PNGs and JPEGs are decoded by strips."""

from __future__ import annotations

import numpy as np
import pytest

from lab.synth.scene import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from onboard.link.outbox import Outbox
from onboard.processing import SceneProcessor
from onboard.scene_pixels import RasterSource, open_scene, strip_decoded
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.imageio import read_rgb, write_rgb
from shared.pipeline.config import PipelineConfig
from shared.pipeline.energy import EnergyModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene

GSD = 2.0  # the counter's natural tile at 2 m is 64 px: many small tiles, quickly counted
TRANSFORM = [500000.0, GSD, 0.0, 4500000.0, 0.0, -GSD]


@pytest.fixture(scope="module")
def scene():
    """A generated 1536 x 1024 px scene: 384 tiles of 64 px."""
    img = generate_scene(SceneConfig(width=1536, height=1024, gsd_m=0.5, layout="airport",
                                     classes=("aircraft",)), seed=4)
    return img.load_pixels()


@pytest.fixture(scope="module")
def counter():
    return OnboardCounter.shipped("objects")


def geotiff(path, pixels, block=256):
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", driver="GTiff", width=pixels.shape[1],
                       height=pixels.shape[0], count=3, dtype="uint8", crs="EPSG:32631",
                       tiled=True, blockxsize=block, blockysize=block,
                       transform=Affine(*[TRANSFORM[i] for i in (1, 2, 0, 4, 5, 3)])) as dst:
        dst.write(pixels.transpose(2, 0, 1))
    return path


def test_the_streamed_plan_equals_the_whole_scene_plan(tmp_path, scene, counter):
    from shared.annotations import Footprint
    from shared.pipeline.dedup import RevisitCache

    src = RasterSource(geotiff(tmp_path / "s.tif", scene))
    fp = Footprint(tuple(TRANSFORM), "EPSG:32631")
    plans = []
    for pixels in (src, scene):
        def count_fn(i, tile, size):
            return counter.count_tile(i, tile, size)

        plans.append(plan_scene(pixels, "s",
                                SceneCounter(count_fn, float(counter.card.flops_per_tile), 64,
                                             input_size=counter.input_size),
                                SceneBudgets(200_000, 1e9, EnergyModel()),
                                PipelineConfig(policy="dynamic-conf"), footprint=fp, tiling=None,
                                cache=RevisitCache()))
    streamed, whole = plans
    assert len(streamed.grid) == 384
    assert src.largest_window_px <= 64 * 64  # never more than one tile's window in memory
    for name in ("onboard", "confidence", "reused", "contexts"):
        assert np.array_equal(getattr(streamed, name), getattr(whole, name), equal_nan=True)
    assert streamed.reused_from == whole.reused_from
    assert np.array_equal(streamed.decisions.action, whole.decisions.action)
    assert np.array_equal(streamed.decisions.quality, whole.decisions.quality)
    assert streamed.inferences == whole.inferences > 0
    assert streamed.reused.any()  # deduplication had work to do
    # What is kept per counted tile for the revisit cache is thumbnail-sized.
    assert all(d.shape[0] <= 64 * 64 / 64 for d in streamed.densities.values())
    src.close()


def _process(tmp_path, name, path, settings, counter):
    box = Outbox(tmp_path / f"{name}.db")
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    result = proc.process("s", str(path), {"gsd_m": GSD, "geotransform": TRANSFORM,
                                           "crs": "EPSG:32631"})
    parts = [p.message.SerializeToString() for p in box.pending(10_000)]
    box.close()
    return result, parts


@pytest.mark.slow  # three scenes of 384 tiles through the whole service processor
def test_geotiff_and_strip_decoded_png_process_as_the_png_decoded_whole(tmp_path, scene,
                                                                         counter):
    png = write_rgb(tmp_path / "s.png", scene)
    tif = geotiff(tmp_path / "s.tif", scene)
    roomy = OnboardSettings(data_dir=tmp_path / "a", policy="dynamic-conf")
    tight = OnboardSettings(data_dir=tmp_path / "b", policy="dynamic-conf",
                            memory_limit_bytes=64 << 20)
    assert not strip_decoded(png, roomy) and strip_decoded(png, tight)
    whole = _process(tmp_path, "whole", png, roomy, counter)
    assert whole[0]["tiles"] == 384 and len(whole[1]) > 2  # header, summary and tiles
    assert _process(tmp_path, "tif", tif, tight, counter) == whole
    assert _process(tmp_path, "strips", png, tight, counter) == whole
    assert not list((tmp_path / "b" / "scratch").glob("*"))  # the scratch TIFF is gone


@pytest.mark.parametrize("kind", ["rgb", "grey", "rgba", "palette", "16bit"])
def test_strip_decoding_gives_what_the_whole_decode_gives(tmp_path, kind):
    import cv2

    rng = np.random.default_rng(1)
    h, w = 700, 1100  # strips of 256 rows: the last one partial
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    path = tmp_path / f"{kind}.png"
    if kind == "rgb":
        write_rgb(path, rgb)
    elif kind == "grey":
        cv2.imwrite(str(path), rgb[:, :, 0])
    elif kind == "rgba":
        cv2.imwrite(str(path), np.dstack([rgb, rgb[:, :, :1]]))
    elif kind == "16bit":
        cv2.imwrite(str(path), rgb.astype(np.uint16) * 257 + 3)
    else:
        from PIL import Image

        Image.fromarray(rgb[:, :, 0] // 16).convert("P").save(path)
    settings = OnboardSettings(data_dir=tmp_path / "ob", memory_limit_bytes=64 << 20)
    big = np.zeros((2048, 2048, 3), np.uint8)  # above the strip threshold of a 64 MiB limit
    assert strip_decoded(write_rgb(tmp_path / "big.png", big), settings)
    from onboard.strips import transcode

    out = transcode(path, tmp_path / f"{kind}.tif")
    src = RasterSource(out)
    assert np.array_equal(src[0:h, 0:w], read_rgb(path))
    src.close()


def test_a_baseline_jpeg_decodes_by_strips_close_to_opencv(tmp_path, scene):
    settings = OnboardSettings(data_dir=tmp_path / "ob", memory_limit_bytes=64 << 20)
    jpg = write_rgb(tmp_path / "s.jpg", scene)
    assert strip_decoded(jpg, settings)
    with open_scene(jpg, settings, tmp_path / "scratch") as pixels:
        assert isinstance(pixels, RasterSource)
        got = pixels[0:1024, 0:1536]
    diff = np.abs(got.astype(int) - read_rgb(jpg).astype(int))
    # Two libjpeg builds: IDCT rounding and chroma upsampling differ (at colour edges).
    assert diff.mean() < 0.5 and (diff > 8).mean() < 0.002
    assert not list((tmp_path / "scratch").glob("*"))


def test_a_corrupt_png_fails_its_strip_decode_and_leaves_no_scratch(tmp_path):
    from onboard.strips import transcode

    data = bytearray(write_rgb(tmp_path / "ok.png", np.random.default_rng(0).integers(
        0, 256, (600, 600, 3), dtype=np.uint8)).read_bytes())
    data[len(data) // 2: len(data) // 2 + 4000] = bytes(4000)
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 (GDAL's error type: any, cleanly)
        transcode(tmp_path / "bad.png", tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()


def test_the_raw_bytes_budgets_are_fractions_of_come_from_the_plans_own_tiles(tmp_path, scene,
                                                                             counter):
    from shared.pipeline.budgets import raw_tile_bytes
    from shared.pipeline.tiles import prepare_tiles

    proc = SceneProcessor(OnboardSettings(data_dir=tmp_path), ScenesDB(Outbox(
        tmp_path / "o.db")), counter)
    pixels = np.ascontiguousarray(scene[:512, :768])
    calls = []

    def prepare(size):
        calls.append(size)
        return prepare_tiles(pixels, size, proc.cfg, counter.input_size)

    expected = raw_tile_bytes(pixels, 64, proc.cfg.raw_quality)
    assert proc.budgets.raw_bytes(pixels, 64, 64, prepare) == expected and calls == [64]
    # from the scene's own pass when planning starts at another size
    assert proc.budgets.raw_bytes(pixels, 64, 128, prepare) == expected and calls == [64]
    assert proc.budgets.raw_bytes(pixels, 512, 512, prepare) == raw_tile_bytes(  # sent resized
        pixels, 512, proc.cfg.raw_quality) and calls == [64]

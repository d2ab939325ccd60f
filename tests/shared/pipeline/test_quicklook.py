"""The quicklook: the whole scene shrunk block by block (as a scene read window by window
is), within its share of the byte budget, or left out saying why."""

import cv2
import numpy as np
import pytest

from shared.pipeline.quicklook import canvas, fitted, quicklook


class Windows:
    """A scene only readable by windows (as onboard.scene_pixels.RasterSource): records the
    largest window read."""

    def __init__(self, pixels):
        self.pixels, self.shape, self.largest = pixels, pixels.shape, 0

    def __getitem__(self, key):
        part = self.pixels[key]
        self.largest = max(self.largest, part.shape[0] * part.shape[1])
        return part


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), (3000, 2000),
                     interpolation=cv2.INTER_LINEAR)  # smooth: JPEG keeps it close
    return img


def test_the_quicklook_is_the_scene_shrunk_to_its_long_side(scene):
    data, w, h = quicklook(scene, 300, quality=90)
    assert (w, h) == (300, 200)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    whole = cv2.resize(scene, (300, 200), interpolation=cv2.INTER_AREA)
    assert back.shape == (200, 300, 3)
    assert np.abs(back.astype(int) - whole).mean() < 12  # JPEG and block seams only


def test_it_reads_the_scene_by_blocks_never_whole(scene):
    src = Windows(scene)
    data, w, h = quicklook(src, 256, block=512)
    assert (w, h) == (256, 171) and src.largest <= 512 * 512
    small = np.zeros((50, 80, 3), np.uint8)
    assert quicklook(small, 256)[1:] == (80, 50)  # never enlarged


def test_it_fits_its_share_of_the_budget_or_says_why_not(scene):
    look, report = fitted(scene, 256, 70, share_bytes=1e9)
    assert report["sent"] and report["bytes"] == len(look[0]) and report["width"] == 256
    # A smaller share: a smaller picture that fits.
    smaller, report2 = fitted(scene, 256, 70, share_bytes=len(look[0]) - 1)
    assert report2["sent"] and report2["bytes"] < len(look[0]) and report2["width"] < 256
    # A tiny budget: none, and the answer says why; off: none.
    none, report3 = fitted(scene, 256, 70, share_bytes=100)
    assert none is None and not report3["sent"] and "more than its share" in report3["reason"]
    off, report4 = fitted(scene, 0, 70, share_bytes=1e9)
    assert off is None and report4["reason"].startswith("off")
    with pytest.raises(ValueError, match="long side"):
        quicklook(scene, -1)


@pytest.mark.parametrize("shape,tile", [((700, 1000), 256), ((300, 260), 128)])
def test_the_canvas_filled_by_the_tiles_pass_is_the_one_read_block_by_block(shape, tile):
    from shared.pipeline.config import PipelineConfig
    from shared.pipeline.quicklook import Canvas
    from shared.pipeline.tiles import prepare_tiles

    pixels = np.random.default_rng(3).integers(0, 256, (*shape, 3), np.uint8)
    filled = Canvas(*shape, 200)
    prepare_tiles(pixels, tile, PipelineConfig(), canvas=filled)
    assert np.array_equal(filled.image, canvas(pixels, 200, tile))
    assert max(filled.image.shape[:2]) == 200

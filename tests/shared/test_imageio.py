import numpy as np
import pytest

from shared.imageio import ImageReadError, encode, image_size, jpeg_roundtrip, read_rgb, write_rgb


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_header_size_matches_decode(tmp_path, make_image, suffix):
    path = make_image(tmp_path / f"a{suffix}", width=37, height=21)
    assert image_size(path) == (37, 21)
    assert read_rgb(path).shape == (21, 37, 3)


def test_png_round_trip_is_lossless_and_rgb(tmp_path):
    pixels = np.zeros((4, 5, 3), np.uint8)
    pixels[..., 0] = 200  # pure red must come back red, not blue
    path = write_rgb(tmp_path / "r.png", pixels)
    assert np.array_equal(read_rgb(path), pixels)


def test_corrupt_truncated_empty_files_raise_naming_the_file(tmp_path, make_image):
    good = make_image(tmp_path / "g.jpg", 64, 64).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(good[:40])
    (tmp_path / "junk.png").write_bytes(b"not an image at all" * 10)
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("trunc.jpg", "junk.png", "empty.png"):
        with pytest.raises(ImageReadError, match=name):
            read_rgb(tmp_path / name)


def test_encode_validates():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="unsupported"):
        encode(img, ".gif")
    with pytest.raises(ValueError, match="quality"):
        encode(img, ".jpg", jpeg_quality=0)
    with pytest.raises(ValueError, match="uint8"):
        encode(img.astype(np.float32), ".png")


def test_jpeg_roundtrip_loses_detail_more_at_low_quality():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    err_hi = np.abs(jpeg_roundtrip(img, 95).astype(int) - img).mean()
    err_lo = np.abs(jpeg_roundtrip(img, 20).astype(int) - img).mean()
    assert 0 < err_hi < err_lo

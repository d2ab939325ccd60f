"""What goes down for a tile, and how: resized to the counters' input (as TargetFuse tiles
onboard) and JPEG-encoded at a chosen quality; the ground decodes the same bytes.
"""

from __future__ import annotations

import cv2
import numpy as np


def downlink_pixels(tile: np.ndarray, tile_size: int, input_size: int | None) -> np.ndarray:
    """The pixels that go down for a tile: resized by ``input_size / tile_size`` (what the
    counters' input holds, partial tiles proportionally) or, without an input size, native."""
    if not input_size or input_size >= tile_size:
        return tile
    f = input_size / tile_size
    h, w = tile.shape[:2]
    return cv2.resize(tile, (max(1, round(w * f)), max(1, round(h * f))),
                      interpolation=cv2.INTER_AREA)


def encode_tile(tile: np.ndarray, quality: int) -> bytes:
    return _encode_bgr(cv2.cvtColor(np.ascontiguousarray(tile), cv2.COLOR_RGB2BGR), quality)


def _encode_bgr(bgr: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encoded_sizes(tile: np.ndarray, qualities) -> list[int]:
    """``len(encode_tile(tile, q))`` for each quality, the colour conversion made once."""
    bgr = cv2.cvtColor(np.ascontiguousarray(tile), cv2.COLOR_RGB2BGR)
    return [len(_encode_bgr(bgr, q)) for q in qualities]


# A downlinked tile is at most a natural tile (hundreds of pixels a side); a JPEG header
# declaring more is refused before anything is allocated for it (a decompression bomb).
MAX_TILE_SIDE = 4096


def tile_size_of(data: bytes) -> tuple[int, int]:
    """(width, height) a received tile's JPEG header declares; ValueError when its bytes are
    empty, not a JPEG, truncated, or larger than ``MAX_TILE_SIDE`` a side."""
    import io

    from shared.imageio import _jpeg_size

    if not data:
        raise ValueError("tile has no bytes")
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("tile bytes are not a JPEG")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ValueError("tile JPEG is truncated (no end-of-image marker)")
    size = _jpeg_size(io.BytesIO(data))
    if size is None or min(size) < 1:
        raise ValueError("tile JPEG declares no frame size")
    if max(size) > MAX_TILE_SIDE:
        raise ValueError(f"tile JPEG declares {size[0]} x {size[1]} px; a tile is at most "
                         f"{MAX_TILE_SIDE} a side")
    return size


def decode_tile(data: bytes) -> np.ndarray:
    """A received tile's bytes -> RGB pixels; ValueError when they do not decode (checked
    by their header first, so no bytes make the decoder allocate a giant image)."""
    size = tile_size_of(data)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ValueError(f"tile bytes do not decode: {exc}") from None
    if img is None or img.shape[1] != size[0] or img.shape[0] != size[1]:
        raise ValueError("tile bytes are not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def sized_jpeg(size: int, seed: int = 0) -> bytes:
    """A real JPEG tile of exactly ``size`` bytes (an 8 px noise image padded with comment
    segments; the smallest it can be when ``size`` is below that): link payloads of a chosen
    size that the ground accepts, for link experiments and tests."""
    import struct

    rng = np.random.default_rng(seed)
    data = encode_tile(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 90)
    pad, missing = [], size - len(data)
    while missing >= 4:
        n = min(missing, 65_537)
        if 0 < missing - n < 4:
            n = missing - 4
        pad.append(b"\xff\xfe" + struct.pack(">H", n - 2) + bytes(n - 4))
        missing -= n
    return data[:2] + b"".join(pad) + data[2:]

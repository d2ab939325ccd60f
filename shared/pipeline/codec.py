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
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(tile), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_tile(data: bytes) -> np.ndarray:
    """A received tile's bytes -> RGB pixels; ValueError when they do not decode."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("tile bytes are not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

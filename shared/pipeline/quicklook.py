"""A scene's quicklook: a small browse image of the whole scene, for the ground to show.

Built block by block (a scene read window by window is never decoded whole): each block of
the scene is shrunk (area averaging) into its place in a canvas whose long side is
``long_side`` pixels, and the canvas is encoded as JPEG. Its bytes go down with the scene's
summary and count against the scene's byte budget before any tile is chosen
(``onboard.link_budgets``); it is left out when it would take more than its share of the
budget."""

from __future__ import annotations

import cv2
import numpy as np


def quicklook(pixels, long_side: int, quality: int = 70,
              block: int = 1024) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of ``pixels`` (an (h, w, 3) uint8 array, or anything
    sliced like one) shrunk so its long side is ``long_side`` (never enlarged); ``block``:
    the side of the windows read (the scene's native tile size reads each tile window once,
    as counting does)."""
    return encode(canvas(pixels, long_side, block), quality)


class Canvas:
    """The shrunk scene, filled block by block: ``add`` shrinks each block read into its
    place (the same pixels however the blocks come, so the tiles' own pass can fill it:
    ``shared.pipeline.tiles.prepare_tiles``, no second read of the scene)."""

    def __init__(self, height: int, width: int, long_side: int):
        if long_side < 1:
            raise ValueError(f"quicklook long side must be >= 1 px, got {long_side}")
        self.scale = min(1.0, long_side / max(height, width))
        qw, qh = max(1, round(width * self.scale)), max(1, round(height * self.scale))
        self.image = np.zeros((qh, qw, 3), np.uint8)

    def add(self, y0: int, x0: int, part: np.ndarray) -> None:
        """Block ``part`` of the scene, whose top-left pixel is (x0, y0)."""
        y1, x1 = y0 + part.shape[0], x0 + part.shape[1]
        ty0, ty1 = round(y0 * self.scale), round(y1 * self.scale)
        tx0, tx1 = round(x0 * self.scale), round(x1 * self.scale)
        if ty1 <= ty0 or tx1 <= tx0:
            return
        part = np.asarray(part)
        if part.ndim == 2:
            part = cv2.cvtColor(part, cv2.COLOR_GRAY2BGR)
        self.image[ty0:ty1, tx0:tx1] = cv2.resize(part[..., :3], (tx1 - tx0, ty1 - ty0),
                                                  interpolation=cv2.INTER_AREA)


def canvas(pixels, long_side: int, block: int = 1024) -> np.ndarray:
    """The scene shrunk so its long side is ``long_side``, built block by block."""
    h, w = pixels.shape[:2]
    out = Canvas(h, w, long_side)
    for y0 in range(0, h, block):
        for x0 in range(0, w, block):
            out.add(y0, x0, pixels[y0:min(h, y0 + block), x0:min(w, x0 + block)])
    return out.image


def encode(image: np.ndarray, quality: int) -> tuple[bytes, int, int]:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("the quicklook could not be encoded")
    return buf.tobytes(), image.shape[1], image.shape[0]


def fitted(pixels, long_side: int, quality: int, share_bytes: float, block: int = 1024,
           full: np.ndarray | None = None) -> tuple[tuple[bytes, int, int] | None, dict]:
    """The quicklook at ``long_side`` (0: off), else at smaller sizes down to 64 px, the
    first whose bytes fit ``share_bytes`` (its share of the scene's byte budget); and what
    happened, for the scene's answer: sent and its bytes, or why not. The scene is read once
    (in ``block`` windows) unless ``full``, its canvas at ``long_side``, is given; smaller
    sizes shrink the first canvas."""
    if long_side == 0:
        return None, {"sent": False, "bytes": 0, "reason": "off (quicklook_px=0)"}
    sides = dict.fromkeys([long_side, *(s for s in (long_side * 3 // 4, long_side // 2,
                                                    long_side // 4) if s >= 64)])
    if full is None:
        full = canvas(pixels, long_side, block)
    for side in sides:
        scale = min(1.0, side / max(full.shape[:2]))
        small = full if scale == 1.0 else cv2.resize(
            full, (max(1, round(full.shape[1] * scale)), max(1, round(full.shape[0] * scale))),
            interpolation=cv2.INTER_AREA)
        look = encode(small, quality)
        if len(look[0]) <= share_bytes:
            return look, {"sent": True, "bytes": len(look[0]), "width": look[1],
                          "height": look[2]}
    return None, {"sent": False, "bytes": 0, "smallest_bytes": len(look[0]),
                  "reason": f"even at {side} px it takes {len(look[0])} bytes, more than its "
                            f"share of the scene's byte budget ({int(share_bytes)} bytes)"}

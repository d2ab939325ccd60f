"""Turning a scene into counter inputs: the one definition both sides and training share.

A counter is trained at a ground sample distance ``model_gsd`` with square inputs of
``input_size`` px. A scene at ``scene_gsd`` is cut into tiles of
``tile_px = round(input_size * model_gsd / scene_gsd)`` source pixels (unless a tile size is
given, e.g. by adaptive tiling), each resized by ``scene_gsd / model_gsd`` so objects keep
the size the counter learnt, and zero-padded to the input size when it is a partial edge tile
or the scaled tile is smaller. Pixels are normalised per channel: by the caller
(``NORMALISED_INPUT``, float32 (3, S, S)) or, for an ONNX counter exported with its input
convention ``RAW_INPUT`` (``lab/shipping/ship.py``), inside the graph, which then takes the uint8
RGB canvas (S, S, 3) as it is (no float copy, transposition or arithmetic per tile in numpy).
"""

from __future__ import annotations

import cv2
import numpy as np

MEAN = np.array([0.45, 0.45, 0.45], np.float32)
STD = np.array([0.22, 0.22, 0.22], np.float32)

# A model card's ``extra["input"]``: what its counter's input tensor holds. Absent: the
# normalised convention (every card shipped before the raw one existed).
NORMALISED_INPUT = "normalised-float32-nchw"
RAW_INPUT = "rgb-uint8-nhwc"
INPUT_CONVENTIONS = (NORMALISED_INPUT, RAW_INPUT)


def input_convention(extra: dict) -> str:
    """A card's input convention (``extra``: the card's extra fields)."""
    conv = extra.get("input", NORMALISED_INPUT)
    if conv not in INPUT_CONVENTIONS:
        raise ValueError(f"unknown counter input convention {conv!r}; one of "
                         f"{', '.join(INPUT_CONVENTIONS)}")
    return conv


def unknown_gsd_warning(model_gsd: float | None = None) -> str:
    """What answers and logs say when no ground sample distance was given: ``tile_px`` then
    cuts tiles as if the scene were at the counter's own GSD."""
    at = f"{model_gsd:g} m/px" if model_gsd else "training resolution"
    return ("ground sample distance unknown: tiles were cut as if the scene were at the "
            f"counter's {at}; counts can be far off at other resolutions (give gsd_m / --gsd)")


def tile_px(input_size: int, model_gsd: float | None, scene_gsd: float | None) -> int:
    """Source pixels per tile side that make one counter input at the counter's GSD."""
    if not model_gsd or not scene_gsd:
        return input_size
    return max(1, round(input_size * model_gsd / scene_gsd))


def _normalise_float(rgb: np.ndarray) -> np.ndarray:
    x = (rgb.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# Every channel's 256 normalised levels, by the very float32 operations above: normalising
# a uint8 tile is then one table look-up per pixel, straight into the (3, H, W) layout (the
# same values, bit for bit, at a fraction of the cost of the arithmetic and the transpose).
_LEVELS = np.ascontiguousarray(_normalise_float(
    np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2))[:, :, 0])  # (3, 256)


def normalise(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W), normalised."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        return _normalise_float(rgb)
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # uint8: a quarter of the bytes
    out = np.empty(chw.shape, np.float32)
    for c in range(3):
        cv2.LUT(chw[c], _LEVELS[c], dst=out[c])
    return out


def limit_detail(pixels: np.ndarray, gsd: float | None, detail_gsd: float | None
                 ) -> np.ndarray:
    """The pixels with no detail finer than ``detail_gsd`` (down to it and back up, so
    coordinates are kept); as they are without both GSDs or when already as coarse."""
    if not gsd or not detail_gsd or gsd >= detail_gsd:
        return pixels
    h, w = pixels.shape[:2]
    f = gsd / detail_gsd
    small = cv2.resize(pixels, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def canvas_tile(tile: np.ndarray, input_size: int, scale: float) -> np.ndarray:
    """One tile (uint8 RGB, any size) -> the counter's input pixels, uint8 (S, S, 3).

    ``scale`` = input px per source px. The tile is resized by it (never past the input size)
    and placed top-left on a black canvas (black, like a scene's no-data border).
    """
    h, w = tile.shape[:2]
    nh, nw = min(input_size, round(h * scale)), min(input_size, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        tile = cv2.resize(tile, (max(nw, 1), max(nh, 1)), interpolation=interp)
    if tile.shape[:2] == (input_size, input_size):
        return np.ascontiguousarray(tile)
    canvas = np.zeros((input_size, input_size, 3), np.uint8)
    canvas[: tile.shape[0], : tile.shape[1]] = tile
    return canvas


def prepare_tile(tile: np.ndarray, input_size: int, scale: float,
                 convention: str = NORMALISED_INPUT) -> np.ndarray:
    """One tile (uint8 RGB, any size) -> the counter's input in ``convention``: float32
    (3, S, S) normalised, or the uint8 (S, S, 3) canvas for a counter that normalises in its
    graph (``canvas_tile``)."""
    canvas = canvas_tile(tile, input_size, scale)
    return canvas if convention == RAW_INPUT else normalise(canvas)

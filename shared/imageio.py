"""Reading and writing image files (OpenCV underneath, RGB at the interface).

``image_size`` reads only the header of PNG and JPEG files, so a dataset of large scenes
can be indexed without decoding every image.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """An image file is missing, truncated, corrupt or of an unsupported type."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (H, W, 3)."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read: {exc}") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"{path}: not a decodable image (corrupt, truncated or "
                             "unsupported type)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode(rgb: np.ndarray, suffix: str, jpeg_quality: int = 90) -> bytes:
    """Encode an RGB array to bytes of the type named by ``suffix`` ('.png', '.jpg')."""
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"unsupported image type {suffix!r}; use one of {IMAGE_SUFFIXES}")
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {jpeg_quality}")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(_as_rgb_u8(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


def write_rgb(path: str | Path, rgb: np.ndarray, jpeg_quality: int = 90) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(rgb, path.suffix, jpeg_quality))
    return path


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """The image as it looks after JPEG compression at ``quality`` (artefacts included)."""
    data = np.frombuffer(encode(rgb, ".jpg", quality), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) a PNG's or JPEG's header declares; None when the header does not say
    (never decodes: what a service may call on bytes anyone sent)."""
    with open(path, "rb") as fh:
        head = fh.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(fh)
    return None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header for PNG/JPEG; a full decode otherwise."""
    size = header_size(path)
    if size is not None:
        return size
    h, w = read_rgb(path).shape[:2]
    return w, h


def _jpeg_size(fh) -> tuple[int, int] | None:
    frame = _jpeg_frame(fh)
    return None if frame is None else frame[1:]


def _jpeg_frame(fh) -> tuple[int, int, int] | None:
    """(start-of-frame marker code, width, height) of a JPEG, None when the header has none."""
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        while code == 0xFF:  # fill bytes before a marker: decoders skip them, so must this
            more = fh.read(1)
            if not more:
                return None
            code = more[0]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        seg_len = fh.read(2)
        if len(seg_len) < 2:
            return None
        (length,) = struct.unpack(">H", seg_len)
        if length < 2:
            return None
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            data = fh.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return code, int(w), int(h)
        fh.seek(length - 2, 1)


def decodable_by_rows(path: str | Path) -> bool:
    """Whether a PNG or JPEG can be decoded a strip of rows at a time, from its header: a
    non-interlaced PNG, or a sequential (baseline or extended) JPEG. An interlaced PNG or a
    progressive JPEG needs the whole image (or every coefficient) in memory at once."""
    with open(path, "rb") as fh:
        head = fh.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return len(head) > 28 and head[28] == 0  # interlace method 0: none
        if head.startswith(b"\xff\xd8"):
            frame = _jpeg_frame(fh)
            return frame is not None and frame[0] in (0xC0, 0xC1)
    return False


def _as_rgb_u8(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        return np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    return img

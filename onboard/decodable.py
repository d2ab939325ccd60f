"""Will the worker be able to decode this upload? Checked at intake, without decoding whole.

A file whose header is sound can still carry garbage where its pixels should be; accepted,
it would fail in the worker after its 202. So before accepting:

- **PNG**: every chunk's CRC is checked, and the IDAT stream is inflated incrementally
  (bounded output per step, nothing kept) to its end; its length must be exactly what the
  header's size, colour type, bit depth and interlacing make. Constant memory, one pass.
- **JPEG**: decoded at 1/8 scale (the DCT's own reduction: an eighth of the pixels in each
  direction, so a 100 Mpx scene costs about 1.6 Mpx of memory); no image is a refusal.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

# Channels per PNG colour type: grey, RGB, palette, grey+alpha, RGBA.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2)]  # (x0, y0, dx, dy) of each interlace pass
_STEP = 1 << 20  # inflate at most 1 MiB of output at a time


class Undecodable(ValueError):
    """The file's pixels cannot be decoded; the message says why."""


def _raw_size(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    bits = _CHANNELS[colour] * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    return sum(rows((width - x0 + dx - 1) // dx if width > x0 else 0,
                    (height - y0 + dy - 1) // dy if height > y0 else 0)
               for x0, y0, dx, dy in _ADAM7)


def check_png(path: Path) -> None:
    with Path(path).open("rb") as fh:
        fh.read(8)  # the signature, checked by the sniffer
        inflate, produced, expected, ended = zlib.decompressobj(), 0, None, False
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise Undecodable("the PNG ends before its IEND chunk")
            length, kind = struct.unpack(">I4s", head)
            data = fh.read(length)
            crc = fh.read(4)
            if len(data) < length or len(crc) < 4:
                raise Undecodable(f"the PNG's {kind!r} chunk is cut short")
            if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
                raise Undecodable(f"the PNG's {kind.decode('latin-1')} chunk fails its CRC")
            if kind == b"IHDR":
                w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[:13])
                if colour not in _CHANNELS:
                    raise Undecodable(f"PNG colour type {colour} does not exist")
                expected = _raw_size(w, h, depth, colour, interlace)
            elif kind == b"IDAT":
                if expected is None or ended:
                    raise Undecodable("the PNG's image data is out of place")
                try:
                    buf = data
                    while buf:
                        produced += len(inflate.decompress(buf, _STEP))
                        if produced > expected:
                            raise Undecodable("the PNG's image data is larger than its "
                                              "header says")
                        buf = inflate.unconsumed_tail
                    ended = inflate.eof
                except zlib.error as exc:
                    raise Undecodable(f"the PNG's image data is corrupt ({exc})") from None
            elif kind == b"IEND":
                break
    if not ended or produced != expected:
        raise Undecodable(f"the PNG's image data holds {produced} of the {expected} bytes "
                          "its header says")


def check_jpeg(path: Path) -> None:
    import cv2
    import numpy as np

    data = np.fromfile(str(path), dtype=np.uint8)
    if cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_8) is None:
        raise Undecodable("the JPEG's image data cannot be decoded")


def check(path: Path, kind: str) -> None:
    """Raise ``Undecodable`` when a PNG's or JPEG's pixels would not decode (a GeoTIFF's
    blocks are checked by the intake's window reads)."""
    if kind == "png":
        check_png(path)
    elif kind == "jpeg":
        check_jpeg(path)

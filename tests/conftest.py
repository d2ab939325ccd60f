"""Shared fixtures: tiny generated images, and the real-dev folder (skip when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.data.realdev import real_dev_root
from shared.imageio import write_rgb


@pytest.fixture
def make_image():
    """Write a small random RGB image and return its path."""

    def make(path: Path, width: int = 64, height: int = 48, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        return write_rgb(path, pixels)

    return make


@pytest.fixture
def jpeg_tile():
    """A real JPEG tile of exactly ``size`` bytes (a small noise image padded with comment
    segments; the smallest it can be where ``size`` is below that), as the ground accepts
    only tiles that decode."""
    import struct

    from shared.pipeline.codec import encode_tile

    def make(size: int = 1500, seed: int = 0) -> bytes:
        rng = np.random.default_rng(seed)
        data = encode_tile(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 90)
        pad = []
        missing = size - len(data)
        while missing >= 4:
            n = min(missing, 65_537)
            if 0 < missing - n < 4:
                n = missing - 4
            pad.append(b"\xff\xfe" + struct.pack(">H", n - 2) + bytes(n - 4))
            missing -= n
        return data[:2] + b"".join(pad) + data[2:]

    return make


@pytest.fixture(scope="session")
def real_dev() -> Path:
    root = real_dev_root()
    if not root.is_dir():
        pytest.skip(f"real-dev data not found at {root} (set TARGETFUSE_REAL_DEV)")
    return root

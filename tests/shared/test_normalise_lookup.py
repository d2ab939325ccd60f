"""Normalisation by table look-up gives the arithmetic's values, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from shared.preprocess import MEAN, STD, normalise


def arithmetic(rgb: np.ndarray) -> np.ndarray:
    x = (rgb.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


@pytest.mark.parametrize("shape", [(256, 256, 3), (37, 100, 3), (1, 1, 3)])
def test_lookup_equals_the_arithmetic(shape):
    rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    rgb[0, 0] = (0, 128, 255)
    got = normalise(rgb)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == (3, shape[0], shape[1])
    assert np.array_equal(got, arithmetic(rgb))


def test_non_uint8_input_still_normalises():
    rgb = np.random.default_rng(1).uniform(0, 255, (8, 9, 3)).astype(np.float32)
    assert np.array_equal(normalise(rgb), arithmetic(rgb))

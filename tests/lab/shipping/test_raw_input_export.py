"""Onboard counters exported with their normalisation inside the ONNX graph (raw uint8 RGB
input, card ``extra.input``) count what the same network exported as before counts."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lab.models.nets import build
from lab.shipping.ship import PARITY_TOLERANCE, export_onnx, onnx_parity
from onboard.counter import OnboardCounter
from onboard.kernel_choice import calibration_tiles
from shared.model_card import ModelCard, write_card
from shared.preprocess import NORMALISED_INPUT, RAW_INPUT, input_convention, normalise

SIZE = 64


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw-input")
    torch.manual_seed(0)
    model = build("shallow-mbv2-small").eval()
    cards = {}
    for convention in (NORMALISED_INPUT, RAW_INPUT):
        folder = root / convention
        folder.mkdir()
        export_onnx(model, SIZE, folder / "shallow.onnx", raw_input=convention == RAW_INPUT)
        card = ModelCard(name="t", role="onboard", architecture="shallow-mbv2-small",
                         arch_config={}, weights="shallow.onnx", sha256="", input_size=SIZE,
                         model_gsd_m=0.5, classes=["aircraft"], truth_classes=["aircraft"],
                         flops_per_tile=1, extra={} if convention == NORMALISED_INPUT
                         else {"input": RAW_INPUT})
        cards[convention] = write_card(card, folder / "shallow.json")
    return model, cards


def test_the_raw_export_takes_uint8_rgb_and_matches_pytorch(exports):
    model, cards = exports
    path = cards[RAW_INPUT].parent / "shallow.onnx"
    inp = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [SIZE, SIZE, 3]
    batch = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    diff = onnx_parity(model, path, batch)
    assert diff["count_abs"] < PARITY_TOLERANCE["count_abs"]
    assert diff["map_abs"] < PARITY_TOLERANCE["map_abs"]


def test_counts_agree_between_the_two_conventions(exports):
    _, cards = exports
    old, new = (OnboardCounter(cards[c]) for c in (NORMALISED_INPUT, RAW_INPUT))
    assert old.input_convention == NORMALISED_INPUT and new.input_convention == RAW_INPUT
    rng = np.random.default_rng(2)
    # full, partial and larger-than-input tiles (resized as counting does)
    tiles = [rng.integers(0, 256, shape, dtype=np.uint8)
             for shape in ((SIZE, SIZE, 3), (40, 64, 3), (128, 128, 3))]
    for tile, size in zip(tiles, (SIZE, SIZE, 128), strict=True):
        a, b = old.count_at([tile], size), new.count_at([tile], size)
        assert np.allclose(a[0], b[0], atol=1e-3)
        assert np.allclose(a[2], b[2], atol=1e-4)
        assert new.model_input(tile, size).dtype == np.uint8
        assert old.model_input(tile, size).dtype == np.float32
    scene = rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)
    assert old.count_tiles(scene, 0.5).total == pytest.approx(
        new.count_tiles(scene, 0.5).total, abs=1e-3)


def test_kernel_choice_tiles_come_in_the_counters_convention():
    raw = calibration_tiles(32, n=2, convention=RAW_INPUT)
    norm = calibration_tiles(32, n=2)
    assert raw.dtype == np.uint8 and raw.shape == (2, 32, 32, 3)
    assert norm.dtype == np.float32 and norm.shape == (2, 3, 32, 32)
    assert np.allclose(np.stack([normalise(t) for t in raw]), norm)


def test_an_unknown_input_convention_is_refused():
    assert input_convention({}) == NORMALISED_INPUT
    with pytest.raises(ValueError, match="convention"):
        input_convention({"input": "bgr"})

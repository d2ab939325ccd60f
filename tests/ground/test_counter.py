"""The ground counter takes its card's default precision only where the CPU computes it
natively; an explicit precision is always obeyed."""

import pytest
import torch

from ground import counter
from ground.counter import GroundCounter, native_precision


def test_fp32_is_native_everywhere():
    assert native_precision("fp32", torch.device("cpu"))
    assert not native_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_the_card_default_needs_native_support(monkeypatch, native, expected):
    monkeypatch.setattr(counter, "native_precision", lambda precision, device: native)
    g = GroundCounter.shipped("aircraft", threads=1)
    assert g.card.extra["default_precision"] == "bf16"
    assert g.precision == expected
    assert GroundCounter.shipped("aircraft", threads=1, precision="bf16").precision == "bf16"

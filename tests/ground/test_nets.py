import pytest
import torch

from ground.nets.layers import OUTPUT_STRIDE
from ground.nets.registry import ARCHITECTURES, build


def test_the_ground_registry_builds_the_ground_architectures_only():
    assert {a.role for a in ARCHITECTURES.values()} == {"ground"}
    model = build("deep-aspp").eval()
    with torch.no_grad():
        density, _ = model(torch.randn(1, 3, 32, 32))
    assert density.shape == (1, 1, 32 // OUTPUT_STRIDE, 32 // OUTPUT_STRIDE)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("shallow-mbv2")  # the onboard network is the tooling's, not the ground's


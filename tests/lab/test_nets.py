import pytest
import torch

from ground.nets.layers import OUTPUT_STRIDE
from ground.nets.registry import count_flops
from lab.nets import ARCHITECTURES, build


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_outputs_at_quarter_resolution_and_non_negative_density(name):
    torch.manual_seed(0)
    model = build(name).eval()
    with torch.no_grad():
        density, mask = model(torch.randn(2, 3, 64, 64))
    assert density.shape == mask.shape == (2, 1, 64 // OUTPUT_STRIDE, 64 // OUTPUT_STRIDE)
    assert (density >= 0).all()


def test_deep_has_at_least_ten_times_the_shallow_flops():
    shallow = count_flops(build("shallow-mbv2"), 256)
    deep = count_flops(build("deep-aspp"), 256)
    assert deep >= 10 * shallow


def test_registry_errors_and_overrides():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet-9000")
    small = build("shallow-mbv2", {"widths": [8, 16, 16, 16], "repeats": [1, 1, 1]})
    assert sum(p.numel() for p in small.parameters()) < \
        sum(p.numel() for p in build("shallow-mbv2").parameters())

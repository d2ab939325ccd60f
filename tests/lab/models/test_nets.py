import pytest
import torch

from ground.nets.layers import OUTPUT_STRIDE
from lab.models.nets import ARCHITECTURES, build, count_flops


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


def test_flops_counter_matches_hand_count():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
    model = torch.nn.Sequential(conv, dw)
    assert count_flops(model, 16) == 2 * 16 * 16 * 8 * (3 * 9) + 2 * 16 * 16 * 8 * 9

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



def test_leaky_density_while_training_only():
    import torch

    from ground.nets.layers import Heads

    heads = Heads(4, classes=2, leak=0.01)
    with torch.no_grad():
        heads.density.bias.fill_(-5.0)  # every pre-activation negative: a "dead" channel
    x = torch.rand(1, 4, 8, 8, requires_grad=True)
    d, _ = heads.train()(x)
    d.sum().backward()
    assert heads.density.bias.grad.abs().min() > 0  # it still learns
    with torch.no_grad():
        assert float(heads.eval()(x)[0].min()) == 0.0  # counts are never negative


def test_leaky_density_head_leaks_gradient_not_value():
    import torch

    from ground.nets.layers import Heads

    torch.manual_seed(0)
    heads = Heads(4, 2, leak=0.01).train()
    with torch.no_grad():
        heads.density.bias.fill_(-100.0)  # every pre-activation negative: a "dead" channel
    x = torch.randn(2, 4, 8, 8)
    density, _ = heads(x)
    assert float(density.sum()) == 0.0  # no negative mass to offset counts elsewhere
    density.sum().backward()
    assert float(heads.density.bias.grad.abs().sum()) > 0  # but it still learns
    heads.eval()
    assert torch.equal(heads(x)[0], density.detach())

"""The CRAFT counter: maps at 1/4 whose density sums to what its heads at 1/2 counted, the
frozen slices of the trunk untouched by training (no gradient, batch norm statistics
kept), and the trainable rest learning."""

import torch

from ground.nets.craft import craft_counter
from ground.nets.registry import build


def test_maps_at_a_quarter_keep_the_heads_count():
    torch.manual_seed(0)
    model = craft_counter({"classes": 3}).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        density, mask = model(x)
        half, _ = model.decode_half(model.trunk(x * model.in_scale + model.in_shift))
    assert density.shape == mask.shape == (2, 3, 16, 24)
    assert half.shape[-2:] == (32, 48)
    assert torch.allclose(density.sum(dim=(2, 3)), half.sum(dim=(2, 3)), rtol=1e-5, atol=1e-7)


def test_frozen_slices_do_not_train():
    torch.manual_seed(0)
    model = build("craft-unet", {"classes": 1, "frozen_slices": 3})
    model.train()
    frozen = [model.trunk.slice1, model.trunk.slice2, model.trunk.slice3]
    assert all(not m.training for m in frozen) and model.trunk.slice4.training
    before = {k: v.clone() for k, v in model.trunk.slice1.state_dict().items()}
    head = model.heads.density.weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    density, mask = model(torch.randn(2, 3, 64, 64))
    (density.sum() + mask.mean()).backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert model.trunk.slice4[1].weight.grad is not None
    opt.step()
    after = model.trunk.slice1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics too
    assert not torch.equal(head, model.heads.density.weight)

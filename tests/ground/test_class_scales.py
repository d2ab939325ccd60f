"""Each class counted from its own input scale's pass, its count kept."""

import pytest
import torch
import torch.nn.functional as F

from ground.class_scales import by_scale, per_class_forward


def _forward(x):
    """Channel 0: bright pixels at a quarter of the input's size, summed per cell (a count
    that depends on the scale: an object of 4x4 px is 16 at full scale, 4 at half);
    channel 1: one per cell."""
    lit = (x.mean(dim=1, keepdim=True) > 0.5).float()
    d0 = F.avg_pool2d(lit, 4) * 16
    d1 = torch.ones_like(d0)
    return torch.cat([d0, d1], 1), torch.cat([d0, d1], 1)


def test_a_class_at_half_scale_comes_from_the_shrunk_pass_with_its_count():
    x = torch.zeros(1, 3, 64, 64)
    x[:, :, 8:12, 8:12] = 1.0
    scales = by_scale(["aircraft", "ship"], {"aircraft": 0.5})
    assert scales == {1.0: [1], 0.5: [0]}
    density, mask = per_class_forward(_forward, x, scales)
    assert density.shape == mask.shape == (1, 2, 16, 16)
    assert float(density[0, 0].sum()) == pytest.approx(4.0)  # the half-scale pass's count
    assert float(density[0, 1].sum()) == pytest.approx(16 * 16)  # the full pass's
    full, _ = per_class_forward(_forward, x, by_scale(["aircraft", "ship"], None))
    assert float(full[0, 0].sum()) == pytest.approx(16.0)


def test_only_the_scales_named_run():
    calls = []

    def forward(x):
        calls.append(x.shape[-1])
        return _forward(x)

    per_class_forward(forward, torch.zeros(2, 3, 64, 64), by_scale(["a", "b"],
                                                                    {"a": 0.5, "b": 0.5}))
    assert calls == [32]


@pytest.mark.parametrize("bad", [0.0, -1.0, 0.3, 1.5, 16.0, float("nan")])
def test_a_scale_that_is_not_one_over_an_integer_is_refused(bad):
    with pytest.raises(ValueError, match="an integer or 1 / an integer"):
        by_scale(["a"], {"a": bad})


def test_a_class_at_twice_the_scale_comes_from_the_enlarged_pass_on_the_same_grid():
    x = torch.zeros(1, 3, 64, 64)
    x[:, :, 8:12, 8:12] = 1.0
    scales = by_scale(["vehicle", "aircraft"], {"vehicle": 2})
    density, mask = per_class_forward(_forward, x, scales)
    assert density.shape == mask.shape == (1, 2, 16, 16)
    assert float(density[0, 0].sum()) == pytest.approx(64.0, abs=1.0)  # 8 x 8 px enlarged
    assert float(density[0, 0, :4, :4].sum()) == pytest.approx(float(density[0, 0].sum()))
    assert float(density[0, 1].sum()) == pytest.approx(16 * 16)  # the scale-1 pass's

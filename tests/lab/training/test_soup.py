import argparse

import pytest
import torch

from lab.training.soup import _alphas, interpolate


def _state(w: float, count: int) -> dict:
    return {"w": torch.full((2, 2), w), "bn.num_batches_tracked": torch.tensor(count)}


def test_interpolation_runs_from_the_start_to_the_mean_of_the_ends():
    start, ends = _state(0.0, 1), [_state(2.0, 5), _state(4.0, 9)]
    assert torch.equal(interpolate(start, ends, 0.0)["w"], start["w"])
    assert torch.equal(interpolate(start, ends, 1.0)["w"], torch.full((2, 2), 3.0))
    half = interpolate(start, ends, 0.5)
    assert torch.equal(half["w"], torch.full((2, 2), 1.5))
    # Integer tensors (BatchNorm's batch counters) are not blended: the first end's.
    assert int(half["bn.num_batches_tracked"]) == 5


def test_ends_of_another_architecture_or_an_alpha_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="architecture"):
        interpolate(_state(0.0, 1), [{"w": torch.zeros(3, 3), "bn.num_batches_tracked":
                                      torch.tensor(1)}], 0.5)
    with pytest.raises(ValueError, match="share"):
        interpolate(_state(0.0, 1), [_state(1.0, 1)], 1.5)
    with pytest.raises(ValueError, match="continuation"):
        interpolate(_state(0.0, 1), [], 0.5)
    with pytest.raises(argparse.ArgumentTypeError):
        _alphas("0,2")
    assert _alphas("1, 0,0.5,0.5") == [0.0, 0.5, 1.0]

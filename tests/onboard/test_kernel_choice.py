import time

import numpy as np
import pytest

from onboard.counter import OnboardCounter
from onboard.kernel_choice import calibration_tiles, choose


def _runner(delay_s: float, bias: float = 0.0):
    def run(batch: np.ndarray) -> np.ndarray:
        time.sleep(delay_s)
        return np.full((len(batch), 1, 4, 4), (10.0 + bias) / 16, np.float32)
    return run


def test_the_fastest_candidate_that_agrees_with_fp32_is_chosen():
    tiles = calibration_tiles(32, n=3)
    choice = choose({"fp32": _runner(0.04), "int8": _runner(0.0), "int8-exact": _runner(0.02)},
                    tiles, repeats=1)
    assert choice.chosen == "int8"
    assert choice.ms_per_tile["int8"] < choice.ms_per_tile["fp32"]
    assert set(choice.qualified) == {"fp32", "int8", "int8-exact"}


def test_a_fast_candidate_whose_counts_differ_is_not_chosen():
    tiles = calibration_tiles(32, n=3)
    choice = choose({"fp32": _runner(0.04), "int8": _runner(0.0, bias=2.0),
                     "int8-exact": _runner(0.02)}, tiles, repeats=1)
    assert choice.chosen == "int8-exact"
    assert "int8" not in choice.qualified
    assert choice.count_diff_max["int8"] == pytest.approx(0.2, rel=1e-3)


def test_choice_needs_the_fp32_reference():
    with pytest.raises(ValueError, match="fp32"):
        choose({"int8": _runner(0.0)}, calibration_tiles(32, n=1))


def test_the_shipped_counter_measures_its_kernels_at_start_up():
    counter = OnboardCounter.shipped("objects", variant="auto")
    choice = counter.kernel_choice
    assert choice is not None and counter.variant == choice.chosen
    assert set(choice.ms_per_tile) == {"int8", "int8-exact", "fp32"}
    assert choice.chosen in choice.qualified


def test_a_forced_precision_skips_the_measurement():
    counter = OnboardCounter.shipped("objects", variant="fp32")
    assert counter.kernel_choice is None and counter.variant == "fp32"
    with pytest.raises(ValueError, match="variant"):
        OnboardCounter.shipped("objects", variant="int4")

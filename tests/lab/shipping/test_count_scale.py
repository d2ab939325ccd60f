"""The per-class count scale: fit on validation totals, refused on any other split."""

import numpy as np
import pytest

from lab.shipping.count_scale import fit_role, fit_scale, relative_cmae


def _result(part: str, pred: list[float], truth: list[int]) -> dict:
    return {"sources": [{"source": "s", "part": part, "per_image": [
        {"image": f"i{k}", "truth": {"ship": t}, "onboard": {"ship": p}, "ground": {"ship": p}}
        for k, (p, t) in enumerate(zip(pred, truth, strict=True))]}]}


def test_a_counter_that_counts_half_gets_scale_two():
    truth = np.array([10.0, 20.0, 30.0, 40.0])
    scale, before, after = fit_scale([(truth / 2, truth)])
    assert scale == pytest.approx(2.0, rel=0.01)
    assert before == pytest.approx(0.5) and after < 0.01


def test_the_scale_minimises_the_mean_of_the_groups_relative_cmae():
    groups = [(np.array([5.0, 5.0]), np.array([10.0, 10.0])),  # half short
              (np.array([10.0]), np.array([10.0]))]  # right
    scale, _, after = fit_scale(groups)
    assert after == pytest.approx(min(relative_cmae(s, groups) for s in (1.0, 1.5, 2.0)),
                                  abs=0.01)
    assert 1.0 <= scale <= 2.0


def test_groups_with_too_few_objects_do_not_set_the_scale():
    scale, before, after = fit_scale([(np.array([1.0]), np.array([3.0]))], min_objects=10)
    assert (scale, before, after) == (1.0, None, None)


def test_fit_only_on_validation_results():
    fits = fit_role(_result("val", [5, 10], [10, 20]), "ground")
    assert fits["ship"]["scale"] == pytest.approx(2.0, rel=0.01)
    with pytest.raises(ValueError, match="validation"):
        fit_role(_result("test", [5, 10], [10, 20]), "ground")

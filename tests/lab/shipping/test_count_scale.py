"""The per-class count scale: fit on validation (and training) totals, never on a test split."""

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


def test_fit_only_on_validation_and_training_results():
    fits = fit_role(_result("val", [5, 10], [10, 20]), "ground")
    assert fits["ship"]["scale"] == pytest.approx(2.0, rel=0.01)
    with pytest.raises(ValueError, match="expected a val result"):
        fit_role(_result("test", [5, 10], [10, 20]), "ground")
    with pytest.raises(ValueError, match="expected a train result"):
        fit_role(_result("val", [5, 10], [10, 20]), "ground",
                 train=_result("test", [5, 10], [10, 20]))


def test_training_scenes_are_groups_beside_the_validation_ones():
    val = _result("val", [8, 16], [10, 20])  # 0.8x on validation
    train = _result("train", [5, 10, 15], [10, 20, 30])  # half on the training scenes
    train["sources"].append({**train["sources"][0], "source": "t"})  # of two sources
    alone = fit_role(val, "ground")["ship"]
    both = fit_role(val, "ground", train=train)["ship"]
    assert alone["scale"] == pytest.approx(1.25, rel=0.01) and alone["groups"] == 1
    assert both["groups"] == 3 and both["scale"] == pytest.approx(2.0, rel=0.01)
    assert both["fit_relative_cmae_before"] == pytest.approx((0.2 + 0.5 + 0.5) / 3, abs=1e-3)

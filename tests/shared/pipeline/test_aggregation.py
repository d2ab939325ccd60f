import numpy as np
import pytest

from shared.pipeline.aggregation import aggregate
from shared.pipeline.decisions import DOWNLINK, UNCOUNTED
from shared.pipeline.selection import ACCEPT, DISCARD


def test_total_and_provenance():
    action = np.array([ACCEPT, DOWNLINK, ACCEPT, DISCARD, UNCOUNTED])
    onboard = np.array([2.0, 5.0, 3.0, 1.5, np.nan])
    reused = np.array([False, False, True, False, False])
    out = aggregate(action, onboard, reused, {1: 7.0})
    assert out.provenance == ["accepted", "downlinked", "reused", "discarded", "uncounted"]
    assert out.total == pytest.approx(2 + 7 + 3 + 1.5)
    assert out.complete
    assert out.by_provenance["downlinked"] == 7.0
    zero = aggregate(action, onboard, reused, {1: 7.0}, discarded="zero")
    assert zero.total == pytest.approx(12.0)


def test_pending_downlink_is_partial_and_uses_the_onboard_count():
    out = aggregate(np.array([DOWNLINK, ACCEPT]), np.array([4.0, 1.0]), np.zeros(2, bool), {})
    assert not out.complete and out.total == 5.0


def test_context_estimate_for_uncounted_tiles():
    action = np.array([ACCEPT, ACCEPT, UNCOUNTED, UNCOUNTED])
    onboard = np.array([2.0, 4.0, np.nan, np.nan])
    contexts = np.array([0, 0, 0, 1])
    out = aggregate(action, onboard, np.zeros(4, bool), {}, contexts, uncounted="context")
    # Context 1 has no measured tile: the scene's measured mean stands in.
    assert out.tile_counts.tolist() == [2.0, 4.0, 3.0, 3.0]


def test_extrapolation_prefers_ground_counts_and_works_without_contexts():
    # A bent pipe: nothing counted onboard, two tiles counted on the ground.
    action = np.array([DOWNLINK, DOWNLINK, UNCOUNTED, UNCOUNTED])
    onboard = np.full(4, np.nan)
    out = aggregate(action, onboard, np.zeros(4, bool), {0: 2.0, 1: 6.0}, None,
                    uncounted="context")
    assert out.tile_counts.tolist() == [2.0, 6.0, 4.0, 4.0]
    assert aggregate(action, onboard, np.zeros(4, bool), {0: 2.0, 1: 6.0}, None,
                     uncounted="zero").total == 8.0
    # A downlinked tile's ground count, not its onboard one, is what the context learns.
    both = aggregate(np.array([DOWNLINK, UNCOUNTED]), np.array([1.0, np.nan]),
                     np.zeros(2, bool), {0: 5.0}, np.array([0, 0]), uncounted="context")
    assert both.tile_counts.tolist() == [5.0, 5.0]


def test_bad_treatment_is_refused():
    with pytest.raises(ValueError, match="discarded"):
        aggregate(np.array([ACCEPT]), np.array([1.0]), np.zeros(1, bool), {}, discarded="x")


def test_class_totals_follow_the_same_rules_and_add_up_to_the_total():
    from shared.pipeline.aggregation import aggregate_classes

    action = np.array([ACCEPT, DOWNLINK, ACCEPT, DISCARD, UNCOUNTED])
    per_class = np.array([[2.0, 0.0], [4.0, 1.0], [1.0, 2.0], [0.5, 1.0],
                          [np.nan, np.nan]])
    reused = np.array([False, False, True, False, False])
    contexts = np.array([0, 0, 1, 1, 0])
    ground = {1: [6.0, 1.0]}
    by = aggregate_classes(["ship", "vehicle"], action, per_class, reused, ground, contexts,
                           uncounted="context")
    total = aggregate(action, per_class.sum(axis=1), reused, {1: 7.0}, contexts,
                      uncounted="context")
    assert by["ship"].total + by["vehicle"].total == pytest.approx(total.total)
    assert by["ship"].by_provenance["downlinked"] == 6.0
    assert by["vehicle"].by_provenance["uncounted"] == pytest.approx(0.5)  # context 0 mean
    with pytest.raises(ValueError, match="class columns"):
        aggregate_classes(["ship"], action, per_class, reused, ground)

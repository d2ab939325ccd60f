"""A new onboard counter's calibration and its check by the replayed throttle
(lab.closed_loop.candidate), on the adaptation tests' generated store."""

from __future__ import annotations

import numpy as np
import pytest

from ground.store import SQLiteStore
from lab.closed_loop.adapt import tile_counts
from lab.closed_loop.candidate import calibrate_candidate, counter_outputs
from lab.closed_loop.tiles import tile_data
from shared.pipeline.error_model import ErrorModel
from tests.lab.test_adapt import PAIR, SENDER, scene_tiles, store_path, teacher  # noqa: F401

ERR = ErrorModel([0.2, 0.05, 0.5, 0.2], {"90": [0.3, 0.05]}, 0.8)


def _tiles(store_path):  # noqa: F811 - the fixture
    store = SQLiteStore(store_path)
    try:
        return tile_data(store, SENDER, PAIR.card, 100)
    finally:
        store.close()


def test_a_counter_counts_each_tile_as_the_adaptation_check_does(store_path):  # noqa: F811
    tiles = _tiles(store_path)
    onnx = PAIR.fp32_weights.read_bytes()
    out = counter_outputs(onnx, tiles, PAIR.card)
    assert np.allclose(out.counts, tile_counts(onnx, tiles, PAIR.card), atol=1e-4)
    assert out.features.shape[0] == len(tiles) and np.isfinite(out.features).all()
    # Confidences from these features are the onboard counter's (its own model's).
    conf = PAIR.confidence.predict(out.features, out.embedding)
    assert ((conf >= 0) & (conf <= 1)).all()


def test_a_counter_that_chooses_no_better_is_not_taken(store_path):  # noqa: F811
    """The candidate is the counter in force (too few tiles to refit its calibration): the
    replayed throttle leaves the same error, short of the gain asked for, so it does not go
    up."""
    tiles = _tiles(store_path)
    onnx = PAIR.fp32_weights.read_bytes()
    check = calibrate_candidate(
        tiles, np.ones(len(tiles)), card=PAIR.card, in_force_onnx=onnx, candidate_onnx=onnx,
        confidence_in_force=PAIR.confidence, base=PAIR.confidence, error_model=ERR,
        group=SENDER, version=0, min_tiles=10_000, min_each=1, held_back=0.5, min_gain=0.05)
    row = check.checks["decisions"]
    assert row["held_back_tiles"] > 0 and row["held_back_scenes"] > 0
    # Too little evidence to refit: judged under the starting calibration.
    assert check.confidence is PAIR.confidence and check.error_model is ERR
    assert "not enough evidence" in check.checks["calibration"]["reason"]
    assert row["replayed_after"] == row["replayed_before"] > 0
    assert not check.taken and "replayed" in check.reason
    # With no gain asked for, the same counter under the same calibration passes.
    same = calibrate_candidate(
        tiles, np.ones(len(tiles)), card=PAIR.card, in_force_onnx=onnx, candidate_onnx=onnx,
        confidence_in_force=PAIR.confidence, base=PAIR.confidence, error_model=ERR,
        group=SENDER, version=0, min_tiles=10_000, min_each=1, held_back=0.5, min_gain=0.0)
    assert same.checks["decisions"]["replayed_after"] == \
        same.checks["decisions"]["replayed_before"] and same.taken


def test_a_gain_carried_by_one_scene_has_little_bootstrap_support():
    from lab.closed_loop.candidate import gain_support

    # Ten scenes each 20 % better: the gain holds whichever scenes are drawn.
    before = np.full(10, 10.0)
    assert gain_support(before, 0.8 * before, 0.05) == 1.0
    # A gain from one scene (the other nine a little worse): the draws that miss that
    # scene (about a third) show none.
    before = np.array([100.0] + [10.0] * 9)
    after = np.array([40.0] + [10.5] * 9)
    assert after.sum() <= 0.8 * before.sum()
    assert 0.5 < gain_support(before, after, 0.05) < 0.8
    # No gain at all: no support; no scenes: none either.
    assert gain_support(before, before, 0.05) == 0.0
    assert gain_support(np.array([]), np.array([]), 0.05) == 0.0
    with pytest.raises(ValueError, match="shape"):
        gain_support(before, before[:3], 0.05)

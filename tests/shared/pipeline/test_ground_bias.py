import numpy as np
import pytest

from shared.pipeline.error_model import ErrorModel
from shared.pipeline.ground_bias import MIN_OBJECTS, fit_ground_scale


def _tiles(ratios: dict[str, float], objects: dict[str, int], per_tile: int = 4):
    """Tiles of each source holding ``per_tile`` objects, the ground counting 1 / ratio."""
    truth, ground, sources = [], [], []
    for s, r in ratios.items():
        n = objects[s] // per_tile
        truth += [per_tile] * n
        ground += [per_tile / r] * n
        sources += [s] * n
    return np.array(truth, float), {90: np.array(ground)}, np.array(sources)


def test_one_source_the_ground_misses_does_not_set_every_source_s_factor():
    """Three sources the ground counts right and a large one it counts at a third: pooled,
    that one carries the factor; from each left-out source the median is nearer."""
    truth, ground, sources = _tiles({"a": 1.0, "b": 1.05, "c": 0.95, "big": 3.0},
                                    {"a": 40, "b": 40, "c": 40, "big": 400})
    scale, record = fit_ground_scale(truth, ground, sources)
    assert record["estimator"] == "median"
    assert record["left_out_log_error"]["median"] < record["left_out_log_error"]["pooled"]
    assert scale["90"] == pytest.approx(np.median([1.0, 1.05, 0.95, 3.0]))
    assert record["per_source_ratio"]["90"]["big"] == pytest.approx(3.0)


def test_pooled_where_the_sources_agree_in_proportion_to_their_objects():
    truth, ground, sources = _tiles({"a": 1.2, "b": 1.2, "c": 1.2},
                                    {"a": 40, "b": 80, "c": 400})
    scale, _ = fit_ground_scale(truth, ground, sources)
    assert scale["90"] == pytest.approx(1.2)


def test_sources_with_too_few_objects_get_no_vote_and_two_sources_are_pooled():
    truth, ground, sources = _tiles({"a": 1.0, "b": 3.0, "tiny": 10.0},
                                    {"a": 40, "b": 40, "tiny": MIN_OBJECTS - 4})
    scale, record = fit_ground_scale(truth, ground, sources)
    assert record["estimator"] == "pooled" and record["left_out_log_error"] == {}
    assert set(record["per_source_ratio"]["90"]) == {"a", "b"}
    assert scale["90"] == pytest.approx(truth.sum() / ground[90].sum())


def test_the_sources_must_name_every_tile():
    truth, ground, sources = _tiles({"a": 1.0}, {"a": 40})
    with pytest.raises(ValueError, match="sources"):
        fit_ground_scale(truth, ground, sources[:-1])


def test_the_error_model_fits_its_ground_scale_by_source_when_told_them():
    truth, ground, sources = _tiles({"a": 1.0, "b": 1.05, "c": 0.95, "big": 3.0},
                                    {"a": 40, "b": 40, "c": 40, "big": 400})
    onboard, conf = truth * 0.9, np.full(len(truth), 0.8)
    pooled = ErrorModel.fit(truth, onboard, conf, ground)
    by_source = ErrorModel.fit(truth, onboard, conf, ground, sources=sources)
    assert pooled.ground_scale["90"] == pytest.approx(truth.sum() / ground[90].sum())
    assert by_source.ground_scale["90"] < pooled.ground_scale["90"]
    assert by_source.fit_on["ground_scale_fit"]["estimator"] == "median"

import numpy as np
import pytest

from shared.confidence import (
    FEATURE_NAMES,
    ConfidenceModel,
    auroc,
    expected_calibration_error,
    fit_confidence,
    is_right,
    tile_features,
)


def test_right_is_exact_for_small_counts_and_tolerant_for_large():
    pred = np.array([0.4, 0.6, 3.4, 3.6, 11.4, 11.6, 50, 55.6])
    true = np.array([0, 0, 3, 3, 10, 10, 54, 50])
    assert is_right(pred, true).tolist() == [True, False, True, False, True, False, True,
                                             False]


def test_features_of_empty_and_busy_tiles():
    d = np.zeros((2, 16, 16), np.float32)
    d[1, 8, 8] = 1.0
    d[1, 0, 0] = 1.0  # on the border
    m = np.full((2, 16, 16), -10.0, np.float32)
    f = tile_features(d, m)
    assert f.shape == (2, len(FEATURE_NAMES))
    named = dict(zip(FEATURE_NAMES, f[1], strict=True))
    assert named["count"] == pytest.approx(2)
    assert named["border_share"] == pytest.approx(0.5, abs=0.01)
    assert f[0, FEATURE_NAMES.index("count")] == 0
    assert np.isfinite(f).all()


def test_fit_gives_discriminating_calibrated_probabilities(tmp_path):
    rng = np.random.default_rng(0)

    def data(n):
        x = rng.normal(size=(n, len(FEATURE_NAMES)))
        p = 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 2])))
        return x, rng.random(n) < p

    model = fit_confidence(*data(3000), *data(3000))
    x, y = data(3000)
    probs = model.predict(x)
    assert probs.min() >= 0 and probs.max() <= 1
    assert auroc(probs, y) > 0.8
    assert expected_calibration_error(probs, y) < 0.05
    path = model.save(tmp_path / "c.json")
    assert np.allclose(ConfidenceModel.load(path).predict(x), probs)


def test_ece_and_auroc_on_known_values():
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == \
        pytest.approx(0.0)
    assert expected_calibration_error(np.array([1.0] * 4), np.array([1, 0, 1, 0])) == \
        pytest.approx(0.5)
    assert auroc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert auroc(np.array([0.1, 0.9]), np.array([1, 1])) is None
    assert auroc(np.array([]), np.array([])) is None  # e.g. a split with no non-empty tile


def test_confidence_falls_for_tiles_far_from_the_training_features():
    from shared.confidence import fit_confidence

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] + rng.normal(0, 0.5, 400) > 0
    model = fit_confidence(x[:200], y[:200], x[200:], y[200:])
    emb = rng.normal(size=(600, 8))
    model.fit_ood(emb[:400], emb[400:])
    far = emb[400:410] + 12.0
    assert model.familiarity(emb[400:]).mean() > 0.97  # in range: (almost) untouched
    assert (model.familiarity(far) < 0.2).all()
    plain = model.predict(x[200:210])
    assert (model.predict(x[200:210], far) <= 0.2 * plain + 1e-12).all()
    assert np.allclose(model.predict(x[200:210], None), plain)


def test_tiles_counting_objects_get_their_own_regime(tmp_path):
    """Idle tiles are right when a cue is low, busy ones when it is high: one regression
    ranks busy tiles backwards; the busy regime ranks them right, and survives a save."""
    rng = np.random.default_rng(1)
    count, cue = FEATURE_NAMES.index("count"), FEATURE_NAMES.index("spread")

    def data(n):
        x = rng.normal(size=(n, len(FEATURE_NAMES)))
        busy = rng.random(n) < 0.3
        x[:, count] = np.where(busy, rng.uniform(1, 5, n), rng.uniform(0, 0.3, n))
        y = np.where(busy, x[:, cue] + 0.3 * rng.normal(size=n) > 0,
                     x[:, cue] + 0.3 * rng.normal(size=n) < 1.0)
        return x, y, busy

    tx, ty, _ = data(4000)
    vx, vy, _ = data(2000)
    ex, ey, eb = data(2000)
    one = fit_confidence(tx, ty, vx, vy, busy_from=None)
    two = fit_confidence(tx, ty, vx, vy)
    assert one.busy is None and two.busy is not None
    assert auroc(one.predict(ex)[eb], ey[eb]) < 0.5
    assert auroc(two.predict(ex)[eb], ey[eb]) > 0.9
    loaded = ConfidenceModel.load(two.save(tmp_path / "c.json"))
    assert np.allclose(loaded.predict(ex), two.predict(ex))

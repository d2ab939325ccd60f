import json

import numpy as np
import pytest

from shared.limits import GSD_M
from shared.scale_regressor import ScaleRegressor


def _regressor(**over):
    fields = dict(presentations=(1, 2), mean=(1.0, 0.0), std=(2.0, 1.0), coef=(0.5, -1.0),
                  intercept=-0.3)
    fields.update(over)
    return ScaleRegressor(**fields)


def test_a_scene_gsd_is_the_median_of_its_tiles_regressed_log_gsd():
    reg = _regressor()
    feats = np.array([[1.0, 0.0], [3.0, 0.0], [1.0, 0.3], [5.0, -1.0]])
    np.testing.assert_allclose(reg.predict_log10(feats), [-0.3, 0.2, -0.6, 1.7])
    assert reg.scene_gsd(feats) == pytest.approx(10 ** ((-0.3 + 0.2) / 2))


def test_an_estimate_no_sensor_has_is_clipped_into_the_gsd_range():
    reg = _regressor(intercept=9.0)
    assert reg.scene_gsd(np.zeros((3, 2))) == GSD_M[1]
    assert _regressor(intercept=-9.0).scene_gsd(np.zeros((3, 2))) == GSD_M[0]


def test_round_trip_and_refusals(tmp_path):
    reg = _regressor()
    assert ScaleRegressor.load(reg.save(tmp_path / "r.json")) == reg
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        reg.predict_log10(np.zeros((3, 5)))
    bad = {"presentations": [1], "mean": [0.0], "std": [1.0], "coef": [float("nan")],
           "intercept": 0.0}
    for data in (bad, {**bad, "coef": [1.0, 2.0]}, {**bad, "coef": [1.0], "std": [0.0]},
                 {**bad, "coef": [1.0], "presentations": [0]}, {"mean": [1.0]}):
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(ValueError):
            ScaleRegressor.load(tmp_path / "bad.json")

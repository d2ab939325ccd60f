import numpy as np
import pytest

from shared.pipeline.selection import ACCEPT, CANDIDATE, DISCARD, select


def test_bands_are_the_papers():
    conf = np.array([0.05, 0.2, 0.5, 0.8, 0.95, np.nan])
    band = select(conf, conf_p=0.2, conf_q=0.8)
    # < conf_p discard; > conf_q accept; the closed interval between: candidate;
    # not counted: candidate (only the ground can count it)
    assert band.tolist() == [DISCARD, CANDIDATE, CANDIDATE, CANDIDATE, ACCEPT, CANDIDATE]


@pytest.mark.parametrize("p,q", [(0.6, 0.5), (-0.1, 0.5), (0.1, 1.5), (float("nan"), 0.5)])
def test_bad_thresholds_are_refused(p, q):
    with pytest.raises(ValueError):
        select(np.array([0.5]), p, q)

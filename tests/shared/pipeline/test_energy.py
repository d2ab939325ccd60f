import math

import pytest

from shared.pipeline.energy import EnergyExceeded, EnergyLedger, EnergyModel


def test_costs_follow_the_documented_formulas():
    m = EnergyModel(j_per_flop=1e-9, radio_w=8.0, downlink_bps=64.0, capture_j_per_mpx=2.0,
                    aggregate_j_per_tile=0.5)
    assert m.compute(1e9, 3) == pytest.approx(3.0)
    assert m.downlink(8) == pytest.approx(8.0)  # 8 W x 64 bit / 64 bit/s
    assert m.bytes_for(8.0) == 8
    assert m.capture(1000, 1000) == pytest.approx(2.0)
    assert m.full_onboard(1000, 1000, 4, 1e9) == pytest.approx(2.0 + 4.0 + 2.0)


@pytest.mark.parametrize("bad", [{"j_per_flop": -1}, {"radio_w": math.nan},
                                 {"downlink_bps": 0}, {"capture_j_per_mpx": "x"}])
def test_bad_constants_are_refused(bad):
    with pytest.raises(ValueError):
        EnergyModel(**bad)


def test_ledger_never_overdraws():
    ledger = EnergyLedger(1.0)
    ledger.spend("compute", 0.6)
    assert ledger.can_afford(0.4) and not ledger.can_afford(0.41)
    with pytest.raises(EnergyExceeded):
        ledger.spend("downlink", 0.5)
    assert ledger.total == pytest.approx(0.6)
    with pytest.raises(ValueError):
        ledger.spend("propulsion", 0.1)
    with pytest.raises(ValueError):
        EnergyLedger(-1.0)

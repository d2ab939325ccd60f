"""The imaging plan: captures on the ground track, in daylight, in time order, and before
the pass that can take them down."""

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from lab.constellation.orbits import contacts, imaging
from lab.constellation.orbits.imaging import Target

from .orbit_fixtures import START, SVALBARD

DAY = 86400.0


@pytest.fixture(scope="module")
def day(sats):
    windows = contacts.windows(sats, [SVALBARD], START, START + DAY)
    return windows, imaging.captures(sats, imaging.load_targets(), START, START + DAY,
                                     windows)


def test_the_shipped_targets_load_with_sources():
    targets = imaging.load_targets()
    assert len(targets) >= 16 and {t.kind for t in targets} == {"airport", "port"}
    assert len({t.code for t in targets}) == len(targets)


def test_captures_are_on_the_ground_track_in_daylight_and_in_order(day, sats):
    _, caps = day
    assert len(caps) >= 2 * len(sats)  # a day over 20 big airports and ports
    assert [c.time for c in caps] == sorted(c.time for c in caps)
    targets = {t.name: t for t in imaging.load_targets()}
    by_name = {s.name: s for s in sats}
    ts = contacts.timescale()
    for c in caps:
        assert c.distance_km <= 145.0 and c.sun_elevation_deg >= 10.0
        # Recomputed independently: the satellite is over the target then.
        sub = wgs84.subpoint_of(EarthSatellite.from_satrec(by_name[c.satellite].satrec, ts)
                                .at(contacts.to_time(c.time)))
        t = targets[c.target]
        d = imaging._distance_km(sub.latitude.degrees, sub.longitude.degrees,
                                 t.latitude_deg, t.longitude_deg)
        assert d == pytest.approx(c.distance_km, abs=0.5)
        # A 10:30 descending-node orbit images in the late morning, local solar time.
        local_h = ((c.time % DAY) / 3600.0 + t.longitude_deg / 15.0) % 24
        assert 9.0 <= local_h <= 12.0


def test_each_capture_names_the_next_pass_that_can_take_it_down(day):
    windows, caps = day
    for c in caps:
        mine = [w for w in windows if w.satellite == c.satellite and w.end > c.time]
        if not mine:
            assert c.next_contact_station is None
            continue
        assert c.next_contact_station == mine[0].station
        assert c.next_contact_start == max(mine[0].start, c.time) >= c.time


def test_the_sun_model_knows_noon_and_midnight():
    # 1 October, Greenwich: the Sun culminates near 11:50 UTC at 90 - 51.5 - 3 deg.
    noon = START + 11.83 * 3600
    assert imaging.sun_elevation_deg(noon, 51.48, 0.0) == pytest.approx(35.3, abs=1.0)
    assert imaging.sun_elevation_deg(START, 51.48, 0.0) < -30
    # Equinox-ish: at the equator the noon Sun is within a few degrees of the zenith.
    assert imaging.sun_elevation_deg(noon, 0.0, 0.0) > 85


def test_bad_targets_are_refused(tmp_path):
    for text, message in (("{}", "targets must be JSON"),
                          ('{"targets": []}', "no target"),
                          ('{"targets": [{"name": "x", "code": "X", "kind": "farm", '
                           '"latitude_deg": 1, "longitude_deg": 1}]}', "kind must be")):
        path = tmp_path / "t.json"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            imaging.load_targets(path)


def test_a_target_off_every_track_is_never_captured(sats):
    # The North Pole is under no 98.6 deg orbit's ground track (it turns at 81.4 deg N).
    pole = Target("pole", "NP", "port", 89.9, 0.0)
    caps = imaging.captures(sats, [pole], START, START + DAY, min_sun_elevation_deg=-90)
    assert caps == []
    assert np.isfinite(imaging.sun_elevation_deg(START, 89.9, 0.0))

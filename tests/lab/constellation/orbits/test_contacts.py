"""Contact windows of a 786 km sun-synchronous orbit over real station coordinates, with
known answers: passes of 10-15 minutes at most, many a day over Svalbard, few at 28 deg N;
the rate model is monotone in elevation; nothing reaches the network."""

import socket
from collections import defaultdict

import numpy as np
import pytest

from lab.constellation.orbits import contacts
from lab.constellation.orbits.stations import load_stations
from lab.constellation.orbits.tle import load_tles, walker_pattern

from .orbit_fixtures import MASPALOMAS, START, SVALBARD

DAY = 86400.0


@pytest.fixture(scope="module")
def day(sats):
    return contacts.windows(sats, [SVALBARD, MASPALOMAS], START, START + DAY)


def test_svalbard_sees_a_polar_orbit_many_times_a_day_and_maspalomas_a_few(day, sats):
    per = defaultdict(int)
    for w in day:
        per[(w.satellite, w.station)] += 1
    for s in sats:
        # 14.3 orbits a day, most of them over 78 deg N; a 28 deg N station sees 3 or 4.
        assert per[(s.name, "Svalbard")] >= 9
        assert 2 <= per[(s.name, "Maspalomas")] <= 5


def test_passes_last_minutes_and_peak_within_the_mask(day):
    durations = np.array([w.duration_s for w in day])
    # Horizon to horizon over 10 deg is at most about 13 minutes for a 786 km orbit.
    assert durations.max() == pytest.approx(12.5 * 60, abs=2.5 * 60)
    assert durations.min() > 0
    for w in day:
        assert 10.0 <= w.max_elevation_deg <= 90.0
    # The longest pass is the one that comes closest to overhead.
    longest = max(day, key=lambda w: w.duration_s)
    assert longest.max_elevation_deg > 60.0


def test_windows_are_sorted_and_do_not_overlap_per_satellite_and_station(day):
    assert [w.start for w in day] == sorted(w.start for w in day)
    last = defaultdict(lambda: -np.inf)
    for w in day:
        assert w.start >= last[(w.satellite, w.station)] and w.end > w.start
        last[(w.satellite, w.station)] = w.end
        assert w.start >= START and w.end <= START + DAY


def test_rate_grows_with_elevation_and_is_capped():
    elevation = np.linspace(0, 90, 91)
    rng = contacts.slant_range_km(elevation, 786.0)
    assert rng[0] == pytest.approx(3_200, rel=0.02) and rng[-1] == pytest.approx(786.0)
    rate = contacts.link_rate(rng, 1e6, 1000.0)
    assert np.all(np.diff(rate) >= 0) and rate.max() == 1e6
    assert rate[10] == pytest.approx(1e6 * (1000 / rng[10]) ** 2)


def test_each_window_rate_follows_its_elevation(day):
    for w in day:
        assert w.rate_bytes_s <= w.peak_rate_bytes_s <= 1e6
    # Higher passes come closer: the peak rate is monotone in the maximum elevation (within
    # the sampling of the culmination).
    by_el = sorted(day, key=lambda w: w.max_elevation_deg)
    peaks = np.array([w.peak_rate_bytes_s for w in by_el])
    assert np.all(np.diff(peaks) >= -0.01 * peaks[1:])
    low = min(day, key=lambda w: w.max_elevation_deg)
    assert low.bytes < max(day, key=lambda w: w.max_elevation_deg).bytes


def test_a_pass_under_way_at_the_start_is_clipped(sats, day):
    first = next(w for w in day if w.satellite == sats[0].name and w.station == "Svalbard")
    mid = (first.start + first.end) / 2
    clipped = contacts.passes(sats[0], SVALBARD, mid, mid + 3600)
    assert clipped[0][0] == mid and clipped[0][1] == pytest.approx(first.end, abs=1.0)


def test_bad_spans_and_masks_are_refused(sats):
    for kw in ({"start": START, "end": START}, {"min_elevation_deg": 95},
               {"max_rate_bytes_s": 0}):
        args = {"start": START, "end": START + 3600, **kw}
        with pytest.raises(ValueError):
            contacts.windows(sats, [SVALBARD], **args)


def test_windows_are_computed_with_the_network_and_file_loads_cut(sats, monkeypatch,
                                                                 tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    contacts._ts = None  # build the timescale again, under the cut
    monkeypatch.chdir(tmp_path)  # skyfield's load() would download into the working folder
    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    got = contacts.windows(sats[:1], [SVALBARD], START, START + 6 * 3600)
    assert len(got) >= 2
    assert list(tmp_path.iterdir()) == []


def test_real_sentinel2_and_a_12_satellite_pattern_over_the_real_stations(real_orbits):
    real = load_tles(real_orbits / "sentinel2.tle")
    stations = load_stations(real_orbits / "ground_stations.csv")
    svalbard = [s for s in stations if s.name == "Svalbard"]
    got = contacts.windows(real, svalbard, START, START + DAY)
    for s in real:
        assert sum(w.satellite == s.name for w in got) >= 9
    with pytest.raises(ValueError, match="apart in one plane"):
        walker_pattern(real, planes=2, per_plane=2)  # 2C half an orbit on lands on 2B
    pattern = walker_pattern(real, planes=4, per_plane=1)
    assert len(pattern) == 12
    big = contacts.windows(pattern, svalbard, START, START + DAY)
    assert len(big) >= 4 * len(got) * 0.9  # four times the satellites, about four times

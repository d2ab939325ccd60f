"""TLE and station files are read with checks; the constellation pattern is what it says."""

import math

import numpy as np
import pytest
from sgp4.api import jday

from lab.constellation.orbits.stations import load_stations, parse_stations
from lab.constellation.orbits.tle import load_tles, parse_tles, walker_pattern


def test_generated_tles_read_back_with_their_elements(sats):
    assert [s.name for s in sats] == ["SSO-A", "SSO-B"]
    assert math.degrees(sats[0].satrec.inclo) == pytest.approx(98.57, abs=1e-3)
    assert all(s.source == "tle" for s in sats)


def test_malformed_tles_are_refused_with_the_line(tle_text):
    lines = tle_text.splitlines()
    broken_checksum = lines[1][:68] + str((int(lines[1][68]) + 1) % 10)
    cases = {
        "\n".join([lines[0], broken_checksum, lines[2]]): "checksum",
        "\n".join([lines[0], lines[1]]): "without its line 2",
        "\n".join([lines[0], lines[1][:40], lines[2]]): "not TLE line 1",
        "\n".join([lines[0], lines[1], lines[5]]): "different satellites",
        "just a name\n": "no two-line element set",
        tle_text + tle_text: "names repeat",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            parse_tles(text, "bad.tle")


def test_the_real_sentinel2_file_reads(real_orbits):
    sats = load_tles(real_orbits / "sentinel2.tle")
    assert [s.name for s in sats] == ["SENTINEL-2A", "SENTINEL-2B", "SENTINEL-2C"]
    stations = load_stations(real_orbits / "ground_stations.csv")
    assert len(stations) == 8 and stations[0].name == "Svalbard"


def test_bad_station_files_are_refused():
    good = "name,latitude_deg,longitude_deg,altitude_m\n"
    cases = {
        "name,lat,lon\nA,1,2\n": "header",
        good + "A,91,0,0\n": "latitude_deg 91.0 is outside",
        good + "A,10,east,0\n": "longitude_deg is not a number",
        good + "A,10,10\n": "expected 4 values",
        good + ",10,10,0\n": "needs a name",
        good: "no station",
        good + "A,1,1,0\nA,2,2,0\n": "repeat",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            parse_stations(text, "bad.csv")


def _positions(sats, when=(2026, 10, 1, 6, 0, 0)):
    jd, fr = jday(*when)
    out = []
    for s in sats:
        err, r, _ = s.satrec.sgp4(jd, fr)
        assert err == 0
        out.append(r)
    return np.array(out)


def test_the_pattern_shifts_node_and_anomaly_and_keeps_the_orbit(sats):
    pattern = walker_pattern(sats[:1], planes=4, per_plane=3)
    assert len(pattern) == 12 and pattern[0] is sats[0]
    assert {s.source for s in pattern[1:]} == {"pattern"}
    base = sats[0].satrec
    for i, s in enumerate(pattern):
        p, k = divmod(i, 3)
        d_raan = (math.degrees(s.satrec.nodeo - base.nodeo)) % 360
        assert d_raan == pytest.approx(90.0 * p, abs=1e-6)
        d_ma = (math.degrees(s.satrec.mo - base.mo)) % 360
        assert d_ma == pytest.approx((120.0 * k + 360.0 * p / 12) % 360, abs=1e-6)
        assert s.satrec.inclo == base.inclo and s.satrec.no_kozai == base.no_kozai
    r = _positions(pattern)
    altitude = np.linalg.norm(r, axis=1) - 6371.0
    assert np.all((altitude > 760) & (altitude < 810))  # every clone on the 786 km orbit
    gaps = np.linalg.norm(r[:, None] - r[None, :], axis=2) + np.eye(12) * 1e9
    assert gaps.min() > 500.0  # no two in the same place
    with pytest.raises(ValueError):
        walker_pattern(sats, 0, 3)
    # SSO-B flies half an orbit from SSO-A: B's second slot lands on A.
    with pytest.raises(ValueError, match="SSO-A and SSO-B/P0S1 0 km apart"):
        walker_pattern(sats, 1, 2)

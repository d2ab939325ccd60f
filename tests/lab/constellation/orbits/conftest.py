"""Fixtures of generated orbits (orbit_fixtures.py), and the real data shipped with the
project."""

from pathlib import Path

import pytest

from lab.constellation.orbits.tle import parse_tles

from .orbit_fixtures import ORBITS, sso_tle


@pytest.fixture(scope="session")
def tle_text():
    # Two satellites half an orbit apart in one plane, as Sentinel-2A and -2B fly.
    return sso_tle("SSO-A", 90001) + sso_tle("SSO-B", 90002, mean_anomaly_deg=94.2)


@pytest.fixture(scope="session")
def sats(tle_text):
    return parse_tles(tle_text, "fixture")


@pytest.fixture(scope="session")
def real_orbits() -> Path:
    return ORBITS

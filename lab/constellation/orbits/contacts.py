"""Contact windows from orbits: when each satellite is above each station's horizon mask.

Algorithm: skyfield's ``EarthSatellite`` (sgp4 under it) propagates each TLE; for every
satellite and station, ``find_events`` finds the rises above and sets below the minimum
elevation (default 10 deg) and the culminations between them. A pass already under way at
the start (or still under way at the end) of the span is clipped to the span. Each pass is
then sampled every ``step_s`` seconds for elevation and slant range.

Link rate model (a free-space link budget): the received power falls as 1/range^2, and at a
fixed modulation and coding margin the rate the link can hold scales with it, capped by the
radio's maximum: ``rate(d) = min(max_rate, max_rate * (ref_range_km / d)^2)``. With the
defaults (``ref_range_km`` 1000 km) a 786 km Sentinel-2 orbit gets the full rate above
about 50 deg of elevation and about 18 % of it at 10 deg (2,340 km away). The slant range
shrinks as the elevation grows, so the rate is monotone in elevation. A window's rate is
the mean over its samples (trapezoids), so that rate x duration is the bytes the pass
carries; its peak rate is kept too.

Offline: skyfield's built-in timescale (``load.timescale(builtin=True)``) and no ephemeris:
nothing here opens a file or a socket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
from skyfield.api import EarthSatellite, load, wgs84

from lab.constellation.orbits.stations import Station
from lab.constellation.orbits.tle import Satellite
from shared.orbits.plan import ContactWindow

EARTH_RADIUS_KM = 6371.0
DEFAULT_MIN_ELEVATION_DEG = 10.0
DEFAULT_MAX_RATE_BYTES_S = 1_000_000.0
DEFAULT_REF_RANGE_KM = 1000.0

_ts = None


def timescale():
    """skyfield's timescale from its built-in UTC and Delta T tables (no download)."""
    global _ts
    if _ts is None:
        _ts = load.timescale(builtin=True)
    return _ts


def link_rate(range_km, max_rate_bytes_s: float = DEFAULT_MAX_RATE_BYTES_S,
              ref_range_km: float = DEFAULT_REF_RANGE_KM):
    """Bytes/s at this slant range (km): 1/range^2, capped at the maximum."""
    d = np.asarray(range_km, dtype=float)
    return np.minimum(max_rate_bytes_s, max_rate_bytes_s * (ref_range_km / d) ** 2)


def slant_range_km(elevation_deg, altitude_km: float):
    """Range to a satellite at this altitude seen at this elevation (spherical Earth)."""
    e = np.radians(np.asarray(elevation_deg, dtype=float))
    r, rs = EARTH_RADIUS_KM, EARTH_RADIUS_KM + altitude_km
    return np.sqrt(rs ** 2 - (r * np.cos(e)) ** 2) - r * np.sin(e)


def to_time(unix: float | np.ndarray):
    """skyfield Time of UNIX seconds (UNIX time counts no leap seconds, nor does this)."""
    u = np.asarray(unix, dtype=float)
    day = math.floor(float(np.min(u)) / 86400.0) * 86400.0
    d = datetime.fromtimestamp(day, UTC)
    return timescale().utc(d.year, d.month, d.day, 0, 0, u - day)


def _unix(t, t0, t0_unix: float) -> np.ndarray:
    return t0_unix + (np.asarray(t.tt) - t0.tt) * 86400.0


def _check(start: float, end: float, min_elevation_deg: float, step_s: float) -> None:
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ValueError(f"the span must have start < end, got {start}, {end}")
    if not 0.0 <= min_elevation_deg < 90.0:
        raise ValueError(f"the minimum elevation must be in [0, 90) deg, got "
                         f"{min_elevation_deg}")
    if not step_s > 0:
        raise ValueError(f"the sampling step must be > 0 s, got {step_s}")


def passes(sat: Satellite, station: Station, start: float, end: float,
           min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG) -> list[tuple[float, float]]:
    """(start, end) in UNIX seconds of each pass above the mask, clipped to the span."""
    _check(start, end, min_elevation_deg, 1.0)
    es = EarthSatellite.from_satrec(sat.satrec, timescale())
    topos = wgs84.latlon(station.latitude_deg, station.longitude_deg, station.altitude_m)
    t0, t1 = to_time(start), to_time(end)
    times, events = es.find_events(topos, t0, t1, altitude_degrees=min_elevation_deg)
    unix = _unix(times, t0, start) if len(events) else []
    out: list[tuple[float, float]] = []
    # Before the first rise or set, the satellite may already be up: a culmination or a
    # set first means the pass began before the span, and opens at its start.
    opened: float | None = None
    for u, ev in zip(unix, events, strict=True):
        if ev == 0:  # rise
            opened = float(u)
        elif ev == 2 and (opened is not None or not out):  # set
            out.append((start if opened is None else opened, float(u)))
            opened = None
        elif opened is None and not out:  # a culmination before any rise
            opened = start
    if opened is not None:  # still up at the end
        out.append((opened, end))
    return [(a, b) for a, b in out if b > a]


def windows(sats: Iterable[Satellite], stations: Iterable[Station], start: float,
            end: float, min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG,
            max_rate_bytes_s: float = DEFAULT_MAX_RATE_BYTES_S,
            ref_range_km: float = DEFAULT_REF_RANGE_KM, *,
            step_s: float = 10.0) -> list[ContactWindow]:
    """Every satellite's windows with every station, sorted by start (then station)."""
    _check(start, end, min_elevation_deg, step_s)
    if not (max_rate_bytes_s > 0 and ref_range_km > 0):
        raise ValueError("the link's maximum rate and reference range must be > 0")
    stations = list(stations)
    out: list[ContactWindow] = []
    for sat in sats:
        es = EarthSatellite.from_satrec(sat.satrec, timescale())
        for st in stations:
            topos = wgs84.latlon(st.latitude_deg, st.longitude_deg, st.altitude_m)
            for a, b in passes(sat, st, start, end, min_elevation_deg):
                n = max(2, math.ceil((b - a) / step_s) + 1)
                u = np.linspace(a, b, n)
                alt, _, dist = (es - topos).at(to_time(u)).altaz()
                rate = link_rate(dist.km, max_rate_bytes_s, ref_range_km)
                mean = float(np.trapezoid(rate, u) / (b - a))
                # Sampled elevations straddle the culmination; the clip keeps a pass that
                # grazes the mask inside [min, 90] whatever the sampling saw.
                top = float(np.clip(alt.degrees.max(), min_elevation_deg, 90.0))
                out.append(ContactWindow(sat.name, st.name, a, b, top, mean,
                                         float(rate.max())))
    out.sort(key=lambda w: (w.start, w.station, w.satellite))
    return out

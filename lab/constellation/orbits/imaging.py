"""The imaging plan: which targets each satellite captures when.

Algorithm: each satellite's sub-satellite point is sampled every ``step_s`` seconds over the
span (skyfield, WGS84). A target is captured at a local minimum of its great-circle
distance to the sub-satellite point (the closest approach of the ground track) when that
distance is within half the swath (Sentinel-2's MSI swath is 290 km) and the Sun is at least
``min_sun_elevation_deg`` above the target's horizon (an optical imager sees nothing at
night). Each capture is a scene: satellite, target, time, across-track distance, Sun
elevation, and the first contact window of that satellite that opens after it (where the
scene's tiles can go down first), so a simulated day has its captures and passes in their
real order.

The Sun's elevation comes from the low-precision formulae of the Astronomical Almanac
(section C, good to about 0.01 deg of declination between 1950 and 2050), which need no
ephemeris file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from skyfield.api import EarthSatellite, wgs84

from lab.constellation.orbits.contacts import EARTH_RADIUS_KM, timescale, to_time
from lab.constellation.orbits.tle import Satellite
from shared.orbits.plan import ContactWindow, iso

DEFAULT_SWATH_KM = 290.0
DEFAULT_MIN_SUN_ELEVATION_DEG = 10.0
KINDS = {"airport": "aircraft", "port": "ship"}  # what a target's scenes are counted for


@dataclass(frozen=True)
class Target:
    name: str
    code: str
    kind: str
    latitude_deg: float
    longitude_deg: float


@dataclass(frozen=True)
class Capture:
    scene_id: str
    satellite: str
    target: str
    kind: str
    time: float  # UNIX seconds
    distance_km: float  # from the ground track, at closest approach
    sun_elevation_deg: float
    next_contact_station: str | None
    next_contact_start: float | None

    def to_json(self) -> dict:
        d = asdict(self)
        d["time_utc"] = iso(self.time)
        d["classes"] = [KINDS[self.kind]]
        d["next_contact_start_utc"] = None if self.next_contact_start is None \
            else iso(self.next_contact_start)
        return d


def load_targets(path: Path | str | None = None) -> list[Target]:
    """The targets of a JSON file (by default the shipped ``targets.json``)."""
    where = str(path) if path else "lab/constellation/orbits/targets.json"
    text = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("lab.constellation.orbits").joinpath("targets.json").read_text(encoding="utf-8")
    try:
        rows = json.loads(text)["targets"]
        targets = [Target(str(r["name"]), str(r["code"]), str(r["kind"]),
                          float(r["latitude_deg"]), float(r["longitude_deg"])) for r in rows]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: targets must be JSON {{\"targets\": [{{name, code, kind, "
                         f"latitude_deg, longitude_deg}}, ...]}} ({exc})") from None
    for t in targets:
        if t.kind not in KINDS:
            raise ValueError(f"{where}: {t.name}: kind must be one of {sorted(KINDS)}")
        if not (-90 <= t.latitude_deg <= 90 and -180 <= t.longitude_deg <= 180):
            raise ValueError(f"{where}: {t.name}: coordinates out of range")
    if not targets:
        raise ValueError(f"{where}: no target")
    return targets


def sun_elevation_deg(unix, lat_deg, lon_deg):
    """The Sun's elevation (deg) seen from here at these times (see the docstring)."""
    n = np.asarray(unix, dtype=float) / 86400.0 + 2440587.5 - 2451545.0  # days from J2000
    mean_lon = np.radians((280.460 + 0.9856474 * n) % 360.0)
    anomaly = np.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl = mean_lon + np.radians(1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    obliquity = np.radians(23.439 - 0.0000004 * n)
    ra = np.arctan2(np.cos(obliquity) * np.sin(ecl), np.cos(ecl))
    dec = np.arcsin(np.sin(obliquity) * np.sin(ecl))
    gmst = np.radians((280.46061837 + 360.98564736629 * n) % 360.0)
    hour = gmst + np.radians(lon_deg) - ra
    lat = np.radians(lat_deg)
    return np.degrees(np.arcsin(np.sin(lat) * np.sin(dec)
                                + np.cos(lat) * np.cos(dec) * np.cos(hour)))


def _distance_km(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def captures(sats: list[Satellite], targets: list[Target], start: float, end: float,
             windows: list[ContactWindow] = (), *, swath_km: float = DEFAULT_SWATH_KM,
             min_sun_elevation_deg: float = DEFAULT_MIN_SUN_ELEVATION_DEG,
             step_s: float = 5.0) -> list[Capture]:
    """Every capture of the span, in time order."""
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ValueError(f"the span must have start < end, got {start}, {end}")
    if not (swath_km > 0 and step_s > 0):
        raise ValueError("the swath and the sampling step must be > 0")
    u = np.arange(start, end + step_s, step_s)
    u = u[u <= end]
    t = to_time(u)
    lat = np.array([x.latitude_deg for x in targets])
    lon = np.array([x.longitude_deg for x in targets])
    out: list[Capture] = []
    for sat in sats:
        sub = wgs84.subpoint_of(EarthSatellite.from_satrec(sat.satrec, timescale()).at(t))
        d = _distance_km(sub.latitude.degrees[:, None], sub.longitude.degrees[:, None],
                         lat[None, :], lon[None, :])  # samples x targets
        # Closest approach: a sample no farther than both neighbours (interior only: an
        # approach cut by the span's ends is the neighbouring day's).
        low = (d[1:-1] <= d[:-2]) & (d[1:-1] < d[2:]) & (d[1:-1] <= swath_km / 2)
        mine = sorted((w for w in windows if w.satellite == sat.name), key=lambda w: w.start)
        for i, j in zip(*np.nonzero(low), strict=True):
            when = float(u[i + 1])
            sun = float(sun_elevation_deg(when, lat[j], lon[j]))
            if sun < min_sun_elevation_deg:
                continue
            nxt = next((w for w in mine if w.end > when), None)
            stamp = iso(when).replace("-", "").replace(":", "")
            out.append(Capture(f"{sat.name.replace('/', '-')}-{targets[j].code}-{stamp}",
                               sat.name, targets[j].name, targets[j].kind, when,
                               round(float(d[i + 1, j]), 1), round(sun, 2),
                               None if nxt is None else nxt.station,
                               None if nxt is None else max(nxt.start, when)))
    out.sort(key=lambda c: (c.time, c.satellite, c.target))
    return out

"""Two-line element sets and a constellation generated from them.

``load_tles`` reads a file of TLEs (an optional name line before each pair, as CelesTrak
publishes them), checks each line's shape and checksum, and builds sgp4 ``Satrec`` objects;
a malformed file is a ``ValueError`` naming the line.

``walker_pattern`` generates a larger constellation from real TLEs, as a documented pattern
(not real satellites): each base satellite is spread over ``planes`` orbital planes, the
right ascension of the ascending node shifted by ``360 / planes`` degrees from one plane to
the next, with ``per_plane`` satellites in each, the mean anomaly shifted by
``360 / per_plane`` degrees from one to the next plus a Walker phase offset of
``phasing * 360 / (planes * per_plane)`` degrees per plane (so that neighbouring planes do
not cross the equator together). Plane 0, slot 0 is the base itself, with its real element
set. Every other element (epoch, inclination, eccentricity, argument of perigee, mean
motion, drag terms) is the base's, and each clone is initialised by sgp4's own
``Satrec.sgp4init``, so it propagates exactly as a real TLE with those elements would. With
shifted nodes the clones are no longer at the base's local time of the node: a
sun-synchronous orbit keeps whatever local time its node starts at, so the clones image at
other hours of the day (a constellation spread over local times).

The real satellites need not be evenly spaced in their plane (Sentinel-2B and -2C fly half
an orbit apart), so a shifted clone of one can land on another: satellites of one plane keep
their spacing, so the pattern is refused when two of a plane are within ``MIN_SPACING_KM``
at the epoch (``--planes 4`` over the three Sentinel-2 gives twelve well apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sgp4.api import WGS72, Satrec

MIN_SPACING_KM = 100.0
# sgp4init counts epochs in days since 1949 December 31 00:00 UT.
_SGP4_EPOCH_JD = 2433281.5


@dataclass(frozen=True)
class Satellite:
    name: str
    satrec: Satrec
    source: str = "tle"  # "tle" (a real element set) or "pattern" (generated, see above)

    @property
    def epoch_jd(self) -> float:
        return self.satrec.jdsatepoch + self.satrec.jdsatepochF


def _checksum(line: str) -> int:
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


def _check_line(line: str, number: str, where: str) -> None:
    if len(line) != 69 or not line.startswith(number + " "):
        raise ValueError(f"{where}: not TLE line {number} (69 characters starting "
                         f"'{number} '): {line!r}")
    if not line[68].isdigit() or int(line[68]) != _checksum(line):
        raise ValueError(f"{where}: checksum is {line[68]!r}, the line sums to "
                         f"{_checksum(line)}")


def parse_tles(text: str, source: str = "<text>") -> list[Satellite]:
    lines = [ln.rstrip() for ln in text.splitlines()]
    sats: list[Satellite] = []
    i, name = 0, None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if not line.startswith("1 "):
            name = line.strip().lstrip("0 ").strip() or None  # "0 NAME" is the 3LE form
            i += 1
            continue
        if i + 1 >= len(lines):
            raise ValueError(f"{source}:{i + 1}: TLE line 1 without its line 2")
        l1, l2 = line, lines[i + 1]
        _check_line(l1, "1", f"{source}:{i + 1}")
        _check_line(l2, "2", f"{source}:{i + 2}")
        if l1[2:7] != l2[2:7]:
            raise ValueError(f"{source}:{i + 1}: lines 1 and 2 are of different satellites "
                             f"({l1[2:7].strip()} and {l2[2:7].strip()})")
        sat = Satrec.twoline2rv(l1, l2)
        if sat.error:
            raise ValueError(f"{source}:{i + 1}: sgp4 refused the elements (error "
                             f"{sat.error})")
        sats.append(Satellite(name or f"NORAD {l1[2:7].strip()}", sat))
        name, i = None, i + 2
    if not sats:
        raise ValueError(f"{source}: no two-line element set found")
    names = [s.name for s in sats]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: satellite names repeat: {names}")
    return sats


def load_tles(path: Path | str) -> list[Satellite]:
    path = Path(path)
    return parse_tles(path.read_text(encoding="utf-8"), str(path))


def clone(base: Satellite, name: str, satnum: int, d_raan_deg: float,
          d_mean_anomaly_deg: float) -> Satellite:
    """The base's orbit with the node and the mean anomaly shifted, by sgp4init."""
    s = base.satrec
    sat = Satrec()
    sat.sgp4init(WGS72, "i", satnum, base.epoch_jd - _SGP4_EPOCH_JD, s.bstar, s.ndot,
                 s.nddot, s.ecco, s.argpo, s.inclo,
                 math.radians((math.degrees(s.mo) + d_mean_anomaly_deg) % 360.0), s.no_kozai,
                 math.radians((math.degrees(s.nodeo) + d_raan_deg) % 360.0))
    return Satellite(name, sat, source="pattern")


def walker_pattern(bases: list[Satellite], planes: int, per_plane: int,
                   phasing: int = 1) -> list[Satellite]:
    """``len(bases) * planes * per_plane`` satellites, named ``BASE/P<plane>S<slot>``
    (see the module docstring)."""
    if planes < 1 or per_plane < 1:
        raise ValueError(f"a pattern needs planes >= 1 and per_plane >= 1, got {planes}, "
                         f"{per_plane}")
    if not bases:
        raise ValueError("a pattern needs at least one base satellite")
    out: list[Satellite] = []
    plane_of: list[int] = []
    for base in bases:
        for p in range(planes):
            for k in range(per_plane):
                plane_of.append(p)
                if p == 0 and k == 0:
                    out.append(base)
                    continue
                out.append(clone(
                    base, f"{base.name}/P{p}S{k}", 90000 + len(out),
                    d_raan_deg=360.0 * p / planes,
                    d_mean_anomaly_deg=360.0 * k / per_plane
                    + phasing * 360.0 * p / (planes * per_plane)))
    _check_spacing(out, plane_of)
    return out


def _check_spacing(sats: list[Satellite], plane_of: list[int]) -> None:
    # Satellites of one plane share every element but the mean anomaly: their distance
    # stays about what it is at the epoch (planes cross only for moments: not compared).
    jd = max(s.epoch_jd for s in sats)
    groups: dict[int, list[tuple[str, np.ndarray]]] = {}
    for sat, plane in zip(sats, plane_of, strict=True):
        err, r, _ = sat.satrec.sgp4(math.floor(jd), jd - math.floor(jd))
        if err:
            raise ValueError(f"{sat.name}: sgp4 error {err} at the epoch")
        groups.setdefault(plane, []).append((sat.name, np.array(r)))
    for members in groups.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                d = float(np.linalg.norm(members[a][1] - members[b][1]))
                if d < MIN_SPACING_KM:
                    raise ValueError(
                        f"the pattern puts {members[a][0]} and {members[b][0]} {d:.0f} km "
                        f"apart in one plane: choose other planes or per_plane (the real "
                        f"satellites are not evenly spaced)")

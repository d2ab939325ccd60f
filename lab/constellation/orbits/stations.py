"""Ground stations: a CSV of ``name,latitude_deg,longitude_deg,altitude_m`` (a header line,
one station a line). Each value is checked (latitude within +-90, longitude within +-180,
altitude between the Dead Sea and Everest, names unique); a bad file is a ``ValueError``
naming the line."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("name", "latitude_deg", "longitude_deg", "altitude_m")


@dataclass(frozen=True)
class Station:
    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float = 0.0


def _number(value: str | None, column: str, where: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {column} is not a number: {value!r}") from None
    if not (math.isfinite(x) and low <= x <= high):
        raise ValueError(f"{where}: {column} {x} is outside [{low}, {high}]")
    return x


def parse_stations(text: str, source: str = "<text>") -> list[Station]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(f.strip() for f in reader.fieldnames) != COLUMNS:
        raise ValueError(f"{source}: the header must be {','.join(COLUMNS)}, got "
                         f"{reader.fieldnames}")
    stations: list[Station] = []
    for row in reader:
        where = f"{source}:{reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{where}: expected {len(COLUMNS)} values")
        name = row["name"].strip()
        if not name:
            raise ValueError(f"{where}: a station needs a name")
        stations.append(Station(
            name, _number(row["latitude_deg"], "latitude_deg", where, -90.0, 90.0),
            _number(row["longitude_deg"], "longitude_deg", where, -180.0, 180.0),
            _number(row["altitude_m"], "altitude_m", where, -500.0, 9000.0)))
    if not stations:
        raise ValueError(f"{source}: no station")
    names = [s.name for s in stations]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: station names repeat: {names}")
    return stations


def load_stations(path: Path | str) -> list[Station]:
    path = Path(path)
    return parse_stations(path.read_text(encoding="utf-8"), str(path))

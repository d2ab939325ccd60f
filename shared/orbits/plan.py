"""The contact plan's JSON format, and what one satellite's radio makes of it.

A plan (written by ``targetfuse plan-contacts``) lists contact windows for every
satellite and station: start and end (UNIX seconds, and ISO 8601 for people), the station,
the maximum elevation, and the link rate (bytes/s): the mean over the pass of the
elevation-dependent rate (``lab/constellation/orbits/contacts.py`` says which model), so that
``rate * duration`` is what the pass can carry, plus the peak rate and those bytes.

A satellite has one radio: where two stations see it at once (Svalbard and Kiruna often
do), ``single_radio`` keeps it with the station it is already talking to until that window
ends, then hands over to the other for what is left of its window (at its mean rate). A
handover mid-pass costs a re-acquisition on a real link, so staying put is also what an
operator would plan.

A station has a few antennas: ``station_antennas`` serves one-radio windows first come, first
served: a window opening while every antenna is busy waits for the first to free (and is cut
to start then), or is dropped if none frees before it ends. Greedy, and per station: a
satellite cut at one station is not moved to another it also sees.

A plan can be replayed from now and time-compressed (``replayed``: a demo of a real plan, as
the compose profile's satellites run one): its start becomes the given moment, time runs
``speedup`` times faster, and rates with it, so each pass still carries its bytes.

This module imports no orbit code: the onboard service reads plans with it alone.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

FORMAT = "targetfuse-contact-plan/1"


@dataclass(frozen=True)
class ContactWindow:
    satellite: str
    station: str
    start: float  # UNIX seconds
    end: float
    max_elevation_deg: float
    rate_bytes_s: float  # mean over the window
    peak_rate_bytes_s: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def bytes(self) -> float:
        return self.rate_bytes_s * self.duration_s

    def to_json(self) -> dict:
        d = asdict(self)
        d["start_utc"], d["end_utc"] = iso(self.start), iso(self.end)
        d["duration_s"] = round(self.duration_s, 3)
        d["bytes"] = round(self.bytes)
        return d


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _window(d: dict, where: str) -> ContactWindow:
    try:
        w = ContactWindow(str(d["satellite"]), str(d["station"]), float(d["start"]),
                          float(d["end"]), float(d["max_elevation_deg"]),
                          float(d["rate_bytes_s"]), float(d["peak_rate_bytes_s"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: a window needs satellite, station, start, end, "
                         f"max_elevation_deg, rate_bytes_s, peak_rate_bytes_s ({exc})") from None
    if not all(math.isfinite(x) for x in (w.start, w.end, w.rate_bytes_s)):
        raise ValueError(f"{where}: times and rates must be finite numbers")
    if not w.start < w.end:
        raise ValueError(f"{where}: start {w.start} must be before end {w.end}")
    if not w.rate_bytes_s > 0:
        raise ValueError(f"{where}: rate_bytes_s must be > 0, got {w.rate_bytes_s}")
    return w


def write_plan(path: Path | str, windows: list[ContactWindow], **meta) -> dict:
    doc = {"format": FORMAT, **meta,
           "windows": [w.to_json() for w in sorted(windows, key=lambda w: (w.start, w.station))]}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def read_plan(path: Path | str) -> tuple[dict, list[ContactWindow]]:
    """The plan's metadata and its windows; a file that is not a plan is a ValueError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a contact plan (format must be {FORMAT!r})")
    if not isinstance(doc.get("windows"), list):
        raise ValueError(f"{path}: a contact plan needs a list of windows")
    windows = [_window(d if isinstance(d, dict) else {}, f"{path}: window {i}")
               for i, d in enumerate(doc["windows"])]
    return {k: v for k, v in doc.items() if k != "windows"}, windows


def single_radio(windows: list[ContactWindow], satellite: str) -> list[ContactWindow]:
    """This satellite's windows, sorted and made non-overlapping (see the docstring)."""
    mine = sorted((w for w in windows if w.satellite == satellite),
                  key=lambda w: (w.start, -w.end))
    out: list[ContactWindow] = []
    for w in mine:
        if out and w.start < out[-1].end:
            if w.end <= out[-1].end:
                continue  # wholly inside the window already held
            w = ContactWindow(w.satellite, w.station, out[-1].end, w.end,
                              w.max_elevation_deg, w.rate_bytes_s, w.peak_rate_bytes_s)
        out.append(w)
    return out


def station_antennas(windows: list[ContactWindow], antennas: int) -> list[ContactWindow]:
    """The windows the stations can serve with ``antennas`` antennas each (see the
    docstring); give it one-radio windows (``single_radio``), so both ends have one free."""
    if antennas < 1:
        raise ValueError(f"a station needs at least one antenna, got {antennas}")
    out = []
    for station in sorted({w.station for w in windows}):
        busy: list[float] = []  # when each antenna in use frees
        for w in sorted((w for w in windows if w.station == station),
                        key=lambda w: (w.start, -w.end)):
            while busy and busy[0] <= w.start:
                heapq.heappop(busy)
            if len(busy) >= antennas:
                if busy[0] >= w.end:
                    continue  # no antenna frees within this window
                w = replace(w, start=heapq.heappop(busy))
            heapq.heappush(busy, w.end)
            out.append(w)
    return sorted(out, key=lambda w: (w.start, w.station))


def plan_span(meta: dict, windows: list[ContactWindow]) -> tuple[float, float]:
    """When the plan begins and ends: its ``start`` and ``end`` fields, else its first
    window's start and its last window's end (the later, where a window outlasts ``end``)."""
    first = min((w.start for w in windows), default=0.0)
    last = max((w.end for w in windows), default=0.0)
    start, end = (meta.get(k, d) for k, d in (("start", first), ("end", last)))
    for key, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise ValueError(f"a contact plan's {key} must be a number (UNIX seconds), got "
                             f"{value!r}")
    return float(start), float(max(end, last))


def replayed(windows: list[ContactWindow], span: tuple[float, float], at: float,
             speedup: float = 1.0, repeat: int = 1) -> list[ContactWindow]:
    """The windows of a plan spanning ``span`` replayed from ``at`` (UNIX seconds): the
    plan's start becomes ``at`` and time runs ``speedup`` times faster, rates too, so each
    pass carries its bytes; ``repeat`` times back to back (a demo that outlasts the plan)."""
    if not speedup >= 1.0 or repeat < 1:
        raise ValueError(f"speedup must be >= 1 and repeat >= 1, got {speedup}, {repeat}")
    start, end = span
    period = (end - start) / speedup
    return [ContactWindow(w.satellite, w.station, at + k * period + (w.start - start) / speedup,
                          at + k * period + (w.end - start) / speedup, w.max_elevation_deg,
                          w.rate_bytes_s * speedup, w.peak_rate_bytes_s * speedup)
            for k in range(repeat) for w in windows]

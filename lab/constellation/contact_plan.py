"""``targetfuse plan-contacts``: a contact plan and an imaging plan for a span of time.

It reads real TLEs and ground stations (by default the copy shipped in
``lab/constellation/orbits/data``, see its PROVENANCE.md, or ``$TARGETFUSE_ORBITS``), optionally
spreads them into a larger constellation (``--planes`` x ``--per-plane`` per real
satellite, the pattern of ``lab/constellation/orbits/tle.py``),
computes every contact window (``lab/constellation/orbits/contacts.py``) and every capture of the
targets (``lab/constellation/orbits/imaging.py``), and writes ``contact_plan.json`` (the file the
onboard service's ``contact_plan_file`` setting reads) and ``imaging_plan.json``. It prints
passes, contact minutes and bytes per station, and captures per satellite.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from lab.constellation.orbits import orbits_root


def plan_start(value: str | None, sats) -> float:
    """A plan's start in UNIX seconds: ``value`` (ISO 8601), else the TLEs' latest epoch's
    midnight (UTC)."""
    if value is None:
        # TLEs are best near their epoch: start at the latest epoch's midnight (UTC).
        latest = max(s.epoch_jd for s in sats)
        return (int(latest - 2440587.5) * 86400.0)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--start must be ISO 8601 like 2026-10-01T00:00:00Z, got "
                         f"{value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def add_parser(sub) -> None:
    p = sub.add_parser("plan-contacts",
                       help="contact windows and captures from orbits (offline)")
    p.add_argument("--tle", default=None,
                   help="TLE file (default: sentinel2.tle in $TARGETFUSE_ORBITS, else the "
                        "copy shipped in lab/constellation/orbits/data)")
    p.add_argument("--stations", default=None,
                   help="ground stations CSV (default: ground_stations.csv beside the TLEs)")
    p.add_argument("--station", action="append", default=None,
                   help="use only this station (repeatable; default: all)")
    p.add_argument("--targets", default=None,
                   help="imaging targets JSON (default: the shipped airports and ports)")
    p.add_argument("--start", default=None,
                   help="UTC start, ISO 8601 (default: midnight of the latest TLE epoch)")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--planes", type=int, default=1,
                   help="orbital planes per real satellite (constellation pattern)")
    p.add_argument("--per-plane", type=int, default=1, help="satellites per plane")
    p.add_argument("--min-elevation", type=float, default=10.0, help="degrees")
    p.add_argument("--max-rate", type=float, default=1_000_000.0,
                   help="the radio's maximum rate, bytes/s")
    p.add_argument("--ref-range", type=float, default=1000.0,
                   help="slant range (km) up to which the link holds its maximum rate")
    p.add_argument("--swath", type=float, default=290.0, help="imager swath, km")
    p.add_argument("--out", default="out/plan", help="folder to write the plans to")
    p.set_defaults(func=run)


def run(args) -> int:
    from lab.constellation.orbits import contacts, imaging
    from lab.constellation.orbits.stations import load_stations
    from lab.constellation.orbits.tle import load_tles, walker_pattern
    from shared.orbits.plan import iso, write_plan

    if not args.hours > 0:
        raise ValueError(f"--hours must be > 0, got {args.hours}")
    tle = Path(args.tle) if args.tle else orbits_root() / "sentinel2.tle"
    station_file = Path(args.stations) if args.stations else tle.parent / "ground_stations.csv"
    real = load_tles(tle)
    sats = walker_pattern(real, args.planes, args.per_plane) \
        if args.planes * args.per_plane > 1 else real
    stations = load_stations(station_file)
    if args.station:
        unknown = set(args.station) - {s.name for s in stations}
        if unknown:
            raise ValueError(f"unknown stations {sorted(unknown)}; {station_file} has "
                             f"{[s.name for s in stations]}")
        stations = [s for s in stations if s.name in args.station]
    targets = imaging.load_targets(args.targets)
    start = plan_start(args.start, real)
    end = start + args.hours * 3600.0

    windows = contacts.windows(sats, stations, start, end, args.min_elevation,
                               args.max_rate, args.ref_range)
    caps = imaging.captures(sats, targets, start, end, windows, swath_km=args.swath)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = {"start": start, "end": end, "start_utc": iso(start), "end_utc": iso(end),
              "satellites": [{"name": s.name, "source": s.source} for s in sats],
              "tle_file": str(tle),
              "pattern": None if sats is real else {
                  "planes_per_satellite": args.planes, "per_plane": args.per_plane,
                  "doc": "lab/constellation/orbits/tle.py: RAAN shifted 360/planes per plane, mean "
                         "anomaly 360/per_plane per slot, sgp4init"}}
    write_plan(out / "contact_plan.json", windows, **common,
               stations=[vars(s) for s in stations],
               min_elevation_deg=args.min_elevation,
               rate_model={"model": "min(max_rate, max_rate * (ref_range_km / range_km)^2)",
                           "max_rate_bytes_s": args.max_rate,
                           "ref_range_km": args.ref_range})
    (out / "imaging_plan.json").write_text(json.dumps(
        {**common, "swath_km": args.swath, "targets_file": args.targets or "shipped",
         "captures": [c.to_json() for c in caps]}, indent=1) + "\n", encoding="utf-8")

    print(f"{len(sats)} satellites, {len(stations)} stations, {iso(start)} to {iso(end)}, "
          f"minimum elevation {args.min_elevation:g} deg")
    per = defaultdict(list)
    for w in windows:
        per[w.station].append(w)
    print(f"{'station':16} {'passes':>6} {'minutes':>8} {'MB':>9} {'max el':>7}")
    for st in stations:
        ws = per.get(st.name, [])
        print(f"{st.name:16} {len(ws):6d} {sum(w.duration_s for w in ws) / 60:8.1f} "
              f"{sum(w.bytes for w in ws) / 1e6:9.1f} "
              f"{max((w.max_elevation_deg for w in ws), default=0):7.1f}")
    by_sat = Counter(c.satellite for c in caps)
    print(f"{len(caps)} captures of {len(targets)} targets; per satellite: "
          + ", ".join(f"{s.name} {by_sat.get(s.name, 0)}" for s in sats))
    print(f"wrote {out / 'contact_plan.json'} and {out / 'imaging_plan.json'}")
    return 0

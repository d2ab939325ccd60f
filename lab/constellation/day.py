"""``targetfuse simulate-day``: a constellation's day, offline and time-compressed.

Orbits and plans from ``orbits`` (the real Sentinel-2 TLEs spread into ``--planes``
planes, the real stations): every contact window of the day and every capture of the
targets. Airports are simulated (a generated airport scene per capture, seeded by its id,
truth by construction, counted by the shipped ``aircraft`` pair through ``lab.simulator``:
the pipeline's own planning and counting code); ports are listed but not simulated (the
shipped ``objects`` pair counts far too few of the generator's ships: they would measure the
generator, not the segment).

The model, per run (all stations, then the single baseline station, on the same scenes):

- Onboard, at each capture: the scene is planned with the byte budget the onboard service
  would give it: ``budget_fraction`` of its raw tile bytes, capped by what the satellite's
  windows carry within ``horizon`` (``onboard.link.windows.ContactSchedule.bytes_within``,
  the service's code) less what it has queued. Its header (2 kB, with the summary) and its
  downlinked tiles join the satellite's queue, first in, first out.
- The link: one radio per satellite (``single_radio``), each window at its mean rate; a
  station serves every satellite it sees, or with ``--antennas N`` at most N at once, first
  come first served (``station_antennas``). A tile that the end
  of a pass cuts is sent again whole in the next window, perhaps through another station;
  the segment stores and counts each (scene, tile) once.
- The ground segment: every received tile joins one queue, counted first in, first out by
  ``workers`` workers at ``worker_rate`` tiles/s each. A scene is complete when its header
  has arrived and each of its tiles is counted; latency is complete - capture.

The day is followed by ``--drain-h`` more hours of passes (no captures), so scenes captured
late can finish; ``complete_within_span`` counts those done within the day. Outputs in
``--out``: ``summary.json``, ``stations.csv``, ``scenes.csv``, ``backlog.csv`` (bytes queued
onboard over the constellation and tiles waiting on the ground, every 5 minutes) and three
plots (backlog, latency distribution, bytes per station).
"""

from __future__ import annotations

import csv
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "docs" / "constellation" / "day"
THROUGHPUT = RESULTS.parent / "throughput.json"
STATIONS = ("Svalbard", "Troll", "Matera", "Alice Springs")
HEADER_BYTES = 2000


@dataclass
class Item:
    scene: str
    tile: int  # -1: the header and summary
    size: float
    sent: float = 0.0


@dataclass
class Radio:
    """One satellite's queue and windows, drained in time order."""

    windows: list
    queue: list = field(default_factory=list)
    cursor: float = -np.inf
    arrivals: list = field(default_factory=list)  # (time, scene, tile, station, size)
    resent: int = 0

    def queued(self) -> float:
        return sum(i.size - i.sent for i in self.queue)

    def drain(self, until: float) -> None:
        for w in self.windows:
            if w.end <= self.cursor or w.start >= until:
                continue
            t = max(w.start, self.cursor)
            stop = min(w.end, until)
            while self.queue and t < stop:
                item = self.queue[0]
                need = (item.size - item.sent) / w.rate_bytes_s
                if t + need <= stop:
                    t += need
                    self.arrivals.append((t, item.scene, item.tile, w.station, item.size))
                    self.queue.pop(0)
                else:
                    item.sent += (stop - t) * w.rate_bytes_s
                    t = stop
            if stop == w.end and self.queue and self.queue[0].sent > 0:
                self.queue[0].sent = 0.0  # cut by the pass's end: sent again whole
                self.resent += 1
        self.cursor = max(self.cursor, until)


class Scenes:
    """Each capture's scene and simulator, made once and shared by both runs."""

    def __init__(self, size: int):
        from ground.counter import GroundCounter
        from onboard.counter import OnboardCounter
        self.size, self.sims = size, {}
        self.onboard = OnboardCounter.shipped("aircraft", batch_size=8)
        self.ground = GroundCounter.shipped("aircraft", threads=1)
        self.model = self.onboard.bundle.error_model
        self.tiling = self.onboard.bundle.tiling.lookup(0.5)

    def sim(self, scene_id: str):
        if scene_id not in self.sims:
            import zlib

            from lab.simulator import SceneSimulator
            from lab.synth import SceneConfig, generate_scene

            image = generate_scene(SceneConfig(width=self.size, height=self.size, gsd_m=0.5,
                                               layout="airport", classes=("aircraft",)),
                                   seed=zlib.crc32(scene_id.encode()), image_id=scene_id)
            self.sims[scene_id] = (SceneSimulator(image, self.onboard, self.ground,
                                                  tiling=self.tiling, error_model=self.model),
                                   len(image.objects))
        return self.sims[scene_id]


def simulate(captures, windows, scenes: Scenes, stations: list[str], end: float,
             drain_end: float, budget: float = 0.1, energy: float = 1.0,
             horizon_s: float = 0.0, workers: int = 1, worker_rate: float = 5.5,
             antennas: int = 0) -> dict:
    """One run over these stations' windows (see the module docstring); ``antennas``
    per station, 0 for as many as it sees satellites."""
    from onboard.link.windows import ContactSchedule
    from shared.orbits.plan import single_radio, station_antennas
    from shared.pipeline.config import PipelineConfig

    cfg = PipelineConfig(policy="value")
    mine = [w for w in windows if w.station in stations]
    sats = sorted({c.satellite for c in captures} | {w.satellite for w in mine})
    served = [w for s in sats for w in single_radio(mine, s)]
    if antennas:
        served = station_antennas(served, antennas)
    radios = {s: Radio([w for w in served if w.satellite == s]) for s in sats}  # in order
    schedules = {s: ContactSchedule.from_plan(r.windows) if r.windows else None
                 for s, r in radios.items()}
    rows, samples = {}, []
    ticks = iter(np.arange(min(c.time for c in captures), drain_end, 300.0))
    tick = next(ticks, None)
    for c in sorted(captures, key=lambda c: c.time):
        while tick is not None and tick <= c.time:
            samples.append(_sample(tick, radios))
            tick = next(ticks, None)
        radio = radios[c.satellite]
        radio.drain(c.time)
        sim, truth = scenes.sim(c.scene_id)
        raw = sim.raw_bytes(cfg.raw_quality)
        sched = schedules[c.satellite]
        cap = 0.0 if sched is None else sched.bytes_within(c.time, horizon_s, 1.0)
        fraction = min(budget, max(0.0, cap - radio.queued() - HEADER_BYTES) / raw)
        r = sim.run(cfg, fraction, energy)
        d = r.plan.decisions
        down = [int(i) for i in np.flatnonzero(d.action == 3)]
        radio.queue.append(Item(c.scene_id, -1, HEADER_BYTES))
        radio.queue += [Item(c.scene_id, i, float(r.plan.sizes[int(d.quality[i])][i]))
                        for i in down]
        rows[c.scene_id] = {"scene_id": c.scene_id, "satellite": c.satellite,
                            "target": c.target, "capture": c.time, "truth": truth,
                            "total": round(r.total, 3), "tiles": len(down),
                            "budget_bytes": round(fraction * raw)}
    while tick is not None:
        samples.append(_sample(tick, radios))
        tick = next(ticks, None)
    for radio in radios.values():
        radio.drain(drain_end)
    return _ground(rows, radios, samples, mine, stations, end, workers, worker_rate)


def _sample(t: float, radios: dict) -> dict:
    for r in radios.values():
        r.drain(t)
    return {"t": float(t), "onboard_bytes": round(sum(r.queued() for r in radios.values()))}


def _ground(rows, radios, samples, windows, stations, end, workers, worker_rate) -> dict:
    arrivals = sorted(a for r in radios.values() for a in r.arrivals)
    free = [0.0] * workers
    done: dict[str, float] = {}
    via: dict[str, set] = {}
    got: dict[str, set] = {}  # what arrived of each scene: its tiles, and -1 its header
    starts = []
    for t, scene, tile, station, _ in arrivals:
        via.setdefault(scene, set()).add(station)
        got.setdefault(scene, set()).add(tile)
        if tile < 0:
            done[scene] = max(done.get(scene, 0.0), t)
            continue
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + 1.0 / worker_rate)
        starts.append(start)
        done[scene] = max(done.get(scene, 0.0), start + 1.0 / worker_rate)
    tiles_in = np.array([a[0] for a in arrivals if a[2] >= 0])
    starts = np.sort(np.array(starts))
    for s in samples:
        s["ground_waiting"] = int(np.sum(tiles_in <= s["t"]) - np.sum(starts <= s["t"]))
    for sid, row in rows.items():
        complete = len(got.get(sid, ())) == row["tiles"] + 1  # its tiles and its header
        row["complete"] = done[sid] if complete else None
        row["latency_s"] = None if not complete else round(done[sid] - row["capture"], 1)
        row["stations"] = "+".join(sorted(via.get(sid, ())))
        row["abs_error"] = round(abs(row["total"] - row["truth"]), 3)
    finished = [r for r in rows.values() if r["complete"] is not None]
    lat = [r["latency_s"] for r in finished]
    by_station = []
    for st in stations:
        ws = [w for w in windows if w.station == st and w.start < end]  # the day's passes
        used = [w for r in radios.values() for w in r.windows  # what its antennas served
                if w.station == st and w.start < end]
        by_station.append({"station": st, "passes": len(ws),
                           "contact_minutes": round(sum(w.duration_s for w in ws) / 60, 1),
                           "served_minutes": round(sum(w.duration_s for w in used) / 60, 1),
                           "bytes_capacity": round(sum(w.bytes for w in ws)),
                           "bytes_sent": round(sum(a[4] for a in arrivals if a[3] == st))})
    return {"stations": list(stations), "scenes": len(rows), "complete": len(finished),
            "complete_within_span": sum(r["complete"] <= end for r in finished),
            "cmae": float(np.mean([r["abs_error"] for r in finished])) if finished else None,
            "latency_median_s": float(np.median(lat)) if lat else None,
            "latency_p90_s": float(np.percentile(lat, 90)) if lat else None,
            "bytes_sent": round(sum(a[4] for a in arrivals)),
            "resent_tiles": sum(r.resent for r in radios.values()),
            "station_table": by_station, "scene_rows": list(rows.values()),
            "backlog": samples}


def plan_day(hours: float, drain_h: float, planes: int, stations: list[str],
             max_rate: float = 1e6):
    from lab.constellation.contact_plan import orbits_root, plan_start
    from lab.constellation.orbits import contacts, imaging
    from lab.constellation.orbits.stations import load_stations
    from lab.constellation.orbits.tle import load_tles, walker_pattern

    root = orbits_root()
    real = load_tles(root / "sentinel2.tle")
    sats = walker_pattern(real, planes, 1) if planes > 1 else real
    known = load_stations(root / "ground_stations.csv")
    unknown = set(stations) - {s.name for s in known}
    if unknown:
        raise ValueError(f"unknown stations {sorted(unknown)}; the file has "
                         f"{[s.name for s in known]}")
    start = plan_start(None, real)
    end = start + hours * 3600.0
    windows = contacts.windows(sats, [s for s in known if s.name in stations], start,
                               end + drain_h * 3600.0, max_rate_bytes_s=max_rate)
    caps = [c for c in imaging.captures(sats, imaging.load_targets(), start, end, windows)
            if c.kind == "airport"]
    return sats, windows, caps, start, end


def write_outputs(out: Path, runs: dict, config: dict, start: float) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = {"config": config, "runs": {k: {x: v for x, v in r.items()
                                              if x not in ("scene_rows", "backlog")}
                                          for k, r in runs.items()}}
    # numpy scalars (sums of arrays) as plain numbers
    (out / "summary.json").write_text(json.dumps(summary, indent=1,
                                                 default=lambda o: o.item()) + "\n")
    with (out / "stations.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "station", "passes", "contact_minutes", "served_minutes",
                    "bytes_capacity", "bytes_sent"])
        for name, r in runs.items():
            w.writerows([name, *x.values()] for x in r["station_table"])
    with (out / "scenes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        cols = ["scene_id", "satellite", "target", "capture", "complete", "latency_s",
                "truth", "total", "abs_error", "tiles", "budget_bytes", "stations"]
        w.writerow(["run", *cols])
        for name, r in runs.items():
            w.writerows([name, *(row[c] for c in cols)] for row in r["scene_rows"])
    with (out / "backlog.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "hours", "onboard_bytes_queued", "ground_tiles_waiting"])
        for name, r in runs.items():
            w.writerows([name, round((s["t"] - start) / 3600, 3), s["onboard_bytes"],
                         s["ground_waiting"]] for s in r["backlog"])
    plot(out, runs, start)
    return summary


def plot(out: Path, runs: dict, start: float) -> None:
    """Backlog over the day and latency distribution (both runs), bytes per station (the
    first run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def figure(name: str, width: float, xlabel: str, ylabel: str, draw) -> None:
        fig, ax = plt.subplots(figsize=(width, 2.8), dpi=100)
        draw(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)

    def backlog(ax):
        for name, r in runs.items():
            ax.plot([(s["t"] - start) / 3600 for s in r["backlog"]],
                    [s["onboard_bytes"] / 1e3 for s in r["backlog"]], label=name)

    def latency(ax):
        for name, r in runs.items():
            lat = np.sort([x["latency_s"] / 60 for x in r["scene_rows"]
                           if x["latency_s"] is not None])
            ax.step(lat, np.arange(1, len(lat) + 1) / max(len(lat), 1), where="post",
                    label=name)

    def stations(ax):
        table = next(iter(runs.values()))["station_table"]
        ax.bar([x["station"] for x in table], [x["bytes_sent"] / 1e3 for x in table])

    figure("backlog.png", 7, "hours from the day's start", "kB queued onboard", backlog)
    figure("latency.png", 5, "capture to complete, minutes", "share of scenes", latency)
    figure("stations.png", 5, "station", "kB received", stations)


def add_parser(sub) -> None:
    p = sub.add_parser("simulate-day", help="a constellation's day, offline: passes, "
                       "bytes, latency, backlog and CMAE, all stations vs one")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--drain-h", type=float, default=12.0,
                   help="hours of passes after the day, for late scenes to finish")
    p.add_argument("--planes", type=int, default=4,
                   help="planes per real Sentinel-2 (4: 12 satellites)")
    p.add_argument("--station", action="append", default=None,
                   help=f"a station (repeatable; default {', '.join(STATIONS)})")
    p.add_argument("--baseline-station", default=None,
                   help="the single-station run's (default: the first station)")
    p.add_argument("--budget", type=float, default=0.1, help="budget fraction")
    p.add_argument("--energy", type=float, default=1.0, help="energy fraction")
    p.add_argument("--horizon-h", type=float, default=0.0,
                   help="the throttle's horizon (0: the next window alone)")
    p.add_argument("--max-rate", type=float, default=1e6,
                   help="the radio's peak rate, bytes/s (the link rate model of plan-contacts)"
                        "; lower it for the share of a downlink that counting gets")
    p.add_argument("--antennas", type=int, default=0,
                   help="antennas per station (default 0: every satellite in view served)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--worker-rate", type=float, default=None,
                   help="tiles/s per worker (default: the 1-worker rate measured by "
                        "benchmarks/segment_throughput.py, docs/constellation/throughput.json)")
    p.add_argument("--size", type=int, default=1024, help="scene width and height, px")
    p.add_argument("--limit-scenes", type=int, default=None)
    p.add_argument("--out", default=str(RESULTS))
    p.set_defaults(func=run)


def measured_worker_rate(path: Path = THROUGHPUT) -> float:
    """One worker's counting rate as the segment's benchmark measured it."""
    try:
        return float(json.loads(path.read_text())["rows"][0]["tiles_s"])
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"no measured worker rate in {path} ({exc}); run "
                         "benchmarks/segment_throughput.py --out there, or give "
                         "--worker-rate") from None


def run(args) -> int:
    if args.worker_rate is None:
        args.worker_rate = measured_worker_rate()
    for name in ("hours", "worker_rate", "size", "max_rate"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    if not (args.workers >= 1 and args.planes >= 1 and args.drain_h >= 0
            and args.horizon_h >= 0 and args.antennas >= 0):
        raise ValueError("--workers and --planes must be >= 1, --drain-h, --horizon-h and "
                         "--antennas >= 0")
    stations = args.station or list(STATIONS)
    base = args.baseline_station or stations[0]
    if base not in stations:
        raise ValueError(f"--baseline-station {base!r} is not one of {stations}")
    sats, windows, caps, start, end = plan_day(args.hours, args.drain_h, args.planes, stations,
                                               args.max_rate)
    caps = caps[:args.limit_scenes] if args.limit_scenes else caps
    if not caps:
        raise ValueError("no airport is captured in this span")
    scenes = Scenes(args.size)
    common = {"end": end, "drain_end": end + args.drain_h * 3600.0, "budget": args.budget,
              "energy": args.energy, "horizon_s": args.horizon_h * 3600.0,
              "workers": args.workers, "worker_rate": args.worker_rate,
              "antennas": args.antennas}
    runs = {f"{len(stations)} stations": simulate(caps, windows, scenes, stations, **common),
            f"{base} alone": simulate(caps, windows, scenes, [base], **common)}
    config = {"satellites": len(sats), "stations": stations, "baseline": base,
              "hours": args.hours, "drain_h": args.drain_h, "scene_px": args.size,
              "max_rate_bytes_s": args.max_rate,
              "captures": len(caps), **{k: v for k, v in common.items() if "end" not in k},
              "command": "targetfuse simulate-day"}
    write_outputs(Path(args.out), runs, config, start)
    print(f"{len(sats)} satellites, {len(caps)} airport captures, stations {stations}")
    print(f"{'run':22} {'complete':>8} {'in day':>6} {'CMAE':>6} {'median min':>10} "
          f"{'p90 min':>8} {'kB sent':>8} {'resent':>6}")
    for name, r in runs.items():
        print(f"{name:22} {r['complete']:8d} {r['complete_within_span']:6d} {r['cmae']:6.2f} "
              f"{r['latency_median_s'] / 60:10.1f} {r['latency_p90_s'] / 60:8.1f} "
              f"{r['bytes_sent'] / 1e3:8.0f} {r['resent_tiles']:6d}")
    print(f"wrote {args.out}")
    return 0

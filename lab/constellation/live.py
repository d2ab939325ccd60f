"""``targetfuse constellation-live``: the distributed ground segment live on this machine.

Three satellites (``targetfuse-onboard``), two stations (``targetfuse-ground`` with
``count_here`` off: link ends and REST only) and two counting workers
(``targetfuse-ground-worker``), each its own process, on a fresh PostgreSQL database and a
fresh JetStream stream. The satellites fly the real Sentinel-2A/B/C over Svalbard and Kiruna:
their contact plan is computed from the TLEs (``orbits``), from 17.2 hours after the
TLE epoch's midnight, where each orbit passes over Kiruna (about 10 minutes) and then
Svalbard (about 3), and time-compressed (``--factor``: a pass of 10 minutes lasts 10/factor
minutes here), with each window's rate
scaled so that a median pass carries ``--pass-kb`` (each scene needs several passes, through
both stations). Each satellite plans its scenes against the windows of the next hour
(``plan_horizon_s``), so the budget is the scene's own and totals can be compared.

Faults: the first station is killed (SIGKILL) in the middle of a pass with parts still to
send and restarted after ``--down-s``; a worker is killed while it holds fetched, unacknowledged
tiles (mid-count) and restarted after ``--down-s``. JetStream redelivers what it held after
``ack_wait`` (10 s here).

Measured against the single-station path (one embedded ground, SQLite, the in-process
worker, a link always open, the same scenes and budget): every scene complete, totals equal,
tiles lost (planned for the downlink and not received), tiles counted twice (counted beyond
those planned, or a total that differs), redeliveries, bytes per station (acknowledged, as
each satellite saw them) and the queue depth over time. ``--out`` (a folder) gets ``live.json`` (by
default ``docs/constellation``, which ``docs/CONSTELLATION.md`` is made from).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from lab.services.live import (
    dev_nats,
    dev_postgres,
    free_port,
    fresh_database,
    get_json,
    post_scene,
)
from lab.services.segment import (
    Processes,
    fresh_stream,
    open_queue,
    segment_env,
    start_station,
    start_worker,
)
from shared.api_keys import Credentials
from shared.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "docs" / "constellation" / "live.json"
STATIONS = ("Kiruna", "Svalbard")  # the first is killed: its passes here are the long ones
ACK_WAIT_S = 10
BUDGET = 0.5


def compressed_plan(factor: float, pass_bytes: float, lead_s: float, hours: float,
                    skip_h: float = 17.2):
    """The three Sentinel-2's windows over the two stations, from ``skip_h`` after the TLE
    epoch's midnight for ``hours``, replayed from ``lead_s`` from now ``factor`` times
    faster, rates scaled so a median pass carries ``pass_bytes``."""
    from dataclasses import replace

    from lab.constellation.contact_plan import orbits_root, plan_start
    from lab.constellation.orbits import contacts
    from lab.constellation.orbits.stations import load_stations
    from lab.constellation.orbits.tle import load_tles
    from shared.orbits.plan import replayed

    root = orbits_root()
    sats = load_tles(root / "sentinel2.tle")
    known = load_stations(root / "ground_stations.csv")
    missing = [n for n in STATIONS if n not in {s.name for s in known}]
    if missing:
        # The station kill is the run's first fault: without Kiruna it cannot happen.
        raise ValueError(f"{root / 'ground_stations.csv'} has no {', '.join(missing)}: the "
                         f"live run needs both {' and '.join(STATIONS)} (the first is the "
                         f"station it kills); it has {[s.name for s in known]}")
    stations = [s for s in known if s.name in STATIONS]
    t0 = plan_start(None, sats) + skip_h * 3600.0
    real = contacts.windows(sats, stations, t0, t0 + hours * 3600.0)
    quiet = [n for n in STATIONS if n not in {w.station for w in real}]
    if quiet:
        raise ValueError(f"no pass over {', '.join(quiet)} in the {hours:g} h of orbit from "
                         f"{skip_h:g} h after the TLE epoch's midnight ({root}): the station "
                         "kill could not be injected")
    fast = replayed(real, (t0, t0 + hours * 3600.0), time.time() + lead_s, factor)
    scale = pass_bytes / statistics.median(w.bytes for w in fast)
    return [replace(w, rate_bytes_s=w.rate_bytes_s * scale,
                    peak_rate_bytes_s=w.peak_rate_bytes_s * scale) for w in fast], \
        [s.name for s in sats]


def scene_pngs(per_satellite: int, size: int) -> dict[str, bytes]:
    from lab.synth import SceneConfig, generate_scene
    from shared.imageio import encode

    out = {}
    for k in range(3 * per_satellite):
        scene = generate_scene(SceneConfig(width=size, height=size, gsd_m=0.5,
                                           layout="airport", classes=("aircraft",)),
                               seed=300 + k, image_id=f"live-{k}")
        out[f"live-{k}"] = encode(scene.load_pixels(), ".png")
    return out


def reference_totals(pngs: dict[str, bytes], work: Path) -> dict[str, dict]:
    """The single-station path: the embedded ground (SQLite, in-process worker) and one
    satellite with the link always open, the same scenes and budget."""
    from ground.app import create_app as ground_app
    from ground.settings import GroundSettings
    from lab.services.live import Service
    from onboard.app import create_app as onboard_app
    from onboard.settings import OnboardSettings

    creds = Credentials.make(work / "keys")
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=work / "g.db",
                                      threads=1, model="aircraft", **creds.ground()))
    ground = Service(g_app)
    g_port = ground.start()
    onboard = Service(onboard_app(OnboardSettings(
        data_dir=work / "onboard", ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
        model="aircraft", budget_fraction=BUDGET, link_rate_bytes_s=5e6, **creds.onboard())))
    o_port = onboard.start()
    try:
        for sid, png in pngs.items():
            post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", png,
                       {"scene_id": sid, "gsd_m": 0.5}, creds.rest_key)
        return wait_all(lambda sid: get_json(f"http://127.0.0.1:{g_port}/v1/scenes/{sid}",
                                             creds.rest_key), list(pngs), 600)
    finally:
        onboard.stop()
        ground.stop()


def wait_all(report, ids: list[str], timeout_s: float, tick=None) -> dict[str, dict]:
    done: dict[str, dict] = {}
    deadline = time.time() + timeout_s
    while len(done) < len(ids) and time.time() < deadline:
        for sid in ids:
            if sid not in done:
                try:
                    r = report(sid)
                except OSError:
                    r = None  # a station down (on purpose)
                if r and r.get("complete"):
                    done[sid] = r
        if tick:
            tick()
        time.sleep(0.25)
    return done


class Faults:
    """Injects the two faults when their moment comes (``step`` on every tick), and brings
    each killed process back ``down_s`` later."""

    def __init__(self, procs: Processes, queue, sat_ports: dict, key: str, down_s: float,
                 events: list, t0: float):
        self.procs, self.queue, self.sat_ports, self.key = procs, queue, sat_ports, key
        self.down_s, self.events, self.t0 = down_s, events, t0
        self.station_up, self.restarts = True, {}
        self.station_killed = False
        # Which worker holds the unacknowledged tiles is not visible from outside: kill one
        # while some are held; when no redelivery follows within the ack wait, it held none,
        # and the other is killed the next time (until a redelivery shows a mid-count kill).
        self.worker_kills, self.redelivered, self.checked_at = 0, 0, None

    def _event(self, what: str) -> None:
        self.events.append((round(time.time() - self.t0, 2), what))

    def _mid_pass(self) -> str | None:
        """A satellite in a pass with the first station, parts still to send."""
        for sat, port in self.sat_ports.items():
            try:
                link = get_json(f"http://127.0.0.1:{port}/v1/link", self.key) or {}
            except OSError:
                continue
            if link.get("station") == STATIONS[0] and link.get("bytes_queued", 0) > 0 \
                    and link.get("parts_sent", 0) > 0 and (link.get("window_ends_in_s") or 0) > 2:
                return sat
        return None

    def step(self) -> None:
        now = time.time()
        for name, when in list(self.restarts.items()):
            if now >= when:
                self.procs.restart(name)
                del self.restarts[name]
                self.station_up = self.station_up or name.startswith("station")
                self._event(f"{name} restarted")
        if not self.station_killed and (sat := self._mid_pass()):
            name = f"station-{STATIONS[0]}"
            self.procs.kill(name)
            self.station_killed, self.station_up = True, False
            self.restarts[name] = now + self.down_s
            self._event(f"{name} killed (SIGKILL) mid-pass, {sat} sending to it")
        state = self.queue.consumer_state()
        self.redelivered = state["redeliveries"]
        waiting = self.checked_at is not None and now < self.checked_at
        if self.redelivered or waiting or self.worker_kills >= 4 or not state["ack_pending"]:
            return
        workers = [n for n in self.procs.specs if n.startswith("worker")]
        if any(n in self.restarts or not self.procs.ready(n) for n in workers):
            return  # one worker down at a time (until it is back up): the other carries on
        name = f"worker-{self.worker_kills % 2 + 1}"
        self.procs.kill(name)
        self.worker_kills += 1
        self.restarts[name] = now + self.down_s
        self.checked_at = now + ACK_WAIT_S + 3
        self._event(f"{name} killed (SIGKILL) while {state['ack_pending']} tiles were "
                    "fetched and unacknowledged")


def live(work: Path, admin: str, nats_url: str, factor: float = 80.0, pass_kb: float = 50.0,
         per_satellite: int = 2, size: int = 1536, hours: float = 6.5, down_s: float = 15.0,
         lead_s: float = 60.0, timeout_s: float = 900.0) -> dict:
    from shared.orbits.plan import write_plan

    pngs = scene_pngs(per_satellite, size)
    windows, sats = compressed_plan(factor, pass_kb * 1000, lead_s, hours)
    plan = work / "contact_plan.json"
    write_plan(plan, windows, compressed_by=factor)
    url, drop = fresh_database(admin, "tf_live")
    stream = fresh_stream("TFLIVE")
    creds = Credentials.make(work / "keys", satellites=len(sats))
    ports = {n: (free_port(), free_port()) for n in STATIONS}
    segment = {**os.environ, **segment_env(url, nats_url, stream, ACK_WAIT_S), **creds.env()}
    procs = Processes(work)
    for name, (http, grpc) in ports.items():
        start_station(procs, f"station-{name}", segment, work / name / "ground.db", http, grpc)
    for i in (1, 2):
        start_worker(procs, f"worker-{i}", segment)
    sat_ports = {}
    targets = json.dumps({n: f"127.0.0.1:{g}" for n, (_, g) in ports.items()})
    for n, sat in enumerate(sats, 1):
        sat_ports[sat] = free_port()
        procs.start(sat, "targetfuse-onboard", {
            **os.environ, **creds.env(), "TARGETFUSE_ONBOARD_DATA_DIR": str(work / sat),
            "TARGETFUSE_ONBOARD_GROUND_KEY_FILE": str(creds.satellite_key_file(n)),
            "TARGETFUSE_ONBOARD_HTTP_PORT": str(sat_ports[sat]),
            "TARGETFUSE_ONBOARD_MODEL": "aircraft",
            "TARGETFUSE_ONBOARD_BUDGET_FRACTION": str(BUDGET),
            "TARGETFUSE_ONBOARD_CONTACT_PLAN_FILE": str(plan),
            "TARGETFUSE_ONBOARD_CONTACT_PLAN_SATELLITE": sat,
            "TARGETFUSE_ONBOARD_STATION_TARGETS": targets,
            "TARGETFUSE_ONBOARD_GROUND_TARGET": f"127.0.0.1:{ports[STATIONS[0]][1]}",
            "TARGETFUSE_ONBOARD_PLAN_HORIZON_S": "3600",
            "TARGETFUSE_ONBOARD_LINK_DEADLINE_S": "5",
            "TARGETFUSE_ONBOARD_LINK_BURST_BYTES": "4000"},
            f"http://127.0.0.1:{sat_ports[sat]}/readyz")
    queue = open_queue(nats_url, stream)
    t0 = time.time()
    events, samples = [], []
    try:
        procs.wait_ready()
        owner = {}
        for k, (sid, png) in enumerate(pngs.items()):
            sat = sats[k % len(sats)]
            owner[sid] = sat
            post_scene(f"http://127.0.0.1:{sat_ports[sat]}/v1/scenes", png,
                       {"scene_id": sid, "gsd_m": 0.5}, creds.rest_key)
        events.append((time.time() - t0, f"{len(pngs)} scenes posted"))
        faults = Faults(procs, queue, sat_ports, creds.rest_key, down_s, events, t0)

        def tick():
            samples.append({"t": round(time.time() - t0, 2), **queue.consumer_state()})
            faults.step()

        def report(sid):
            # Any station answers for the whole segment (one shared store); the second
            # while the first is down.
            for name in STATIONS if faults.station_up else STATIONS[1:]:
                try:
                    return get_json(f"http://127.0.0.1:{ports[name][0]}/v1/scenes/{sid}",
                                    creds.rest_key)
                except OSError:
                    continue
            return None
        ground = wait_all(report, list(pngs), timeout_s, tick)
        # And confirmed onboard: the satellite frees what the segment holds.
        wait_all(lambda sid: {"complete": (get_json(
            f"http://127.0.0.1:{sat_ports[owner[sid]]}/v1/scenes/{sid}", creds.rest_key)
            or {}).get("state") == "delivered"}, list(pngs), 120, tick)
        onboard = {sid: get_json(f"http://127.0.0.1:{sat_ports[owner[sid]]}/v1/scenes/{sid}",
                                 creds.rest_key) for sid in pngs}
        links = {sat: get_json(f"http://127.0.0.1:{p}/v1/link", creds.rest_key)
                 for sat, p in sat_ports.items()}
        final_queue = queue.consumer_state()
        seconds = time.time() - t0
    finally:
        procs.stop()
        queue.delete_stream()
        queue.close()
        drop()
    reference = reference_totals(pngs, work / "reference")
    return summarise(pngs, owner, ground, onboard, links, reference, events, samples,
                     final_queue, seconds, windows,
                     {"factor": factor, "pass_kb": pass_kb, "scenes": len(pngs),
                      "scene_px": size, "budget_fraction": BUDGET, "stations": STATIONS,
                      "satellites": sats, "workers": 2, "ack_wait_s": ACK_WAIT_S,
                      "down_s": down_s, "plan_hours": hours})


TOTAL_TOLERANCE = 0.5  # objects: two totals closer than half an object are the same count


def summarise(pngs, owner, ground, onboard, links, reference, events, samples, final_queue,
              seconds, windows, config) -> dict:
    rows = []
    for sid in pngs:
        g, ref, ob = ground.get(sid) or {}, reference.get(sid) or {}, onboard.get(sid) or {}
        planned = (g.get("tiles_by_provenance") or {}).get("downlinked", 0)
        rows.append({"scene_id": sid, "satellite": owner[sid],
                     "complete": bool(g.get("complete")), "onboard_state": ob.get("state"),
                     "total": g.get("total"), "single_station_total": ref.get("total"),
                     "tiles_planned": planned, "tiles_received": g.get("tiles_received", 0),
                     "tiles_counted": g.get("tiles_counted", 0),
                     "downlink_bytes": g.get("downlink_bytes")})
    # Counts, not float totals: a tile counted twice shows as more tiles counted than
    # planned; a total is compared to the object (half a count), since the same tiles
    # counted in other batches differ in the last digits.
    equal = [r["total"] is not None and r["single_station_total"] is not None
             and abs(r["total"] - r["single_station_total"]) < TOTAL_TOLERANCE for r in rows]
    differ = [{"scene_id": r["scene_id"], "total": r["total"],
               "single_station_total": r["single_station_total"]}
              for r, same in zip(rows, equal, strict=True) if not same]
    by_station: dict[str, int] = {}
    for link in links.values():
        for st, b in ((link or {}).get("bytes_by_station") or {}).items():
            by_station[st] = by_station.get(st, 0) + b
    return {
        "config": config, "seconds": round(seconds, 1), "events": events, "scenes": rows,
        "checks": {
            "scenes": len(rows), "complete": sum(r["complete"] for r in rows),
            "delivered": sum(r["onboard_state"] == "delivered" for r in rows),
            "totals_equal_single_station": sum(equal),
            "tiles_planned": sum(r["tiles_planned"] for r in rows),
            "tiles_lost": sum(max(0, r["tiles_planned"] - r["tiles_received"]) for r in rows),
            "tiles_counted_twice": sum(max(0, r["tiles_counted"] - r["tiles_planned"])
                                       for r in rows),
            "totals_differing": differ,
            "redelivered": final_queue["redeliveries"],
            "left_in_queue": final_queue["pending"] + final_queue["ack_pending"]},
        "faults": {"station_killed": any(f"station-{STATIONS[0]} killed" in what
                                         for _, what in events),
                   "workers_killed": sum(what.startswith("worker-") and "killed" in what
                                         for _, what in events)},
        "bytes_by_station": by_station,
        "windows": len(windows),
        "queue": samples}


def plot_queue(result: dict, path: Path) -> None:
    """The queue over the run: tiles waiting for a worker and tiles being counted, with the
    faults marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = result["queue"]
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=100)
    ax.step([s["t"] for s in q], [s["pending"] for s in q], where="post",
            label="waiting for a worker")
    ax.step([s["t"] for s in q], [s["ack_pending"] for s in q], where="post",
            label="fetched, not acknowledged")
    for t, what in result["events"]:
        if "killed" in what:
            ax.axvline(t, color="red", lw=0.8, ls="--")
            ax.text(t, ax.get_ylim()[1] * 0.95, what.split(" ")[0], fontsize=7, rotation=90,
                    va="top", ha="right", color="red")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("tiles")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_parser(sub) -> None:
    p = sub.add_parser("constellation-live", help="3 satellites, 2 stations, 2 workers on "
                       "PostgreSQL and NATS, a station and a worker killed (live)")
    p.add_argument("--postgres", default=dev_postgres(),
                   help="an admin URL: a database of its own is made there and dropped")
    p.add_argument("--nats", default=dev_nats())
    p.add_argument("--factor", type=float, default=80.0, help="time compression")
    p.add_argument("--pass-kb", type=float, default=50.0,
                   help="what a median pass carries, kB (rates scaled to it)")
    p.add_argument("--scenes-per-satellite", type=int, default=2)
    p.add_argument("--size", type=int, default=1536, help="scene width and height, px")
    p.add_argument("--down-s", type=float, default=15.0,
                   help="how long a killed process stays down")
    p.add_argument("--out", default=str(RESULTS.parent),
                   help="folder to write live.json and live-queue.png into (default: "
                        "docs/constellation, which docs/CONSTELLATION.md is made from)")
    p.set_defaults(func=run)


def run(args) -> int:
    for name in ("factor", "pass_kb", "down_s"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    if not (1 <= args.scenes_per_satellite <= 20 and 256 <= args.size <= 4096):
        raise ValueError("--scenes-per-satellite must be in [1, 20], --size in [256, 4096]")
    from lab.out_folder import out_folder

    out = out_folder(args.out, "live.json and live-queue.png") / RESULTS.name
    work = Path(tempfile.mkdtemp(prefix="tf-live-"))
    result = live(work, args.postgres, args.nats, args.factor, args.pass_kb,
                  args.scenes_per_satellite, args.size, down_s=args.down_s)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot_queue(result, out.with_name(out.stem + "-queue.png"))
    for t, what in result["events"]:
        print(f"{t:8.1f} s  {what}")
    c = result["checks"]
    print(f"{c['complete']}/{c['scenes']} scenes complete ({c['delivered']} confirmed "
          f"onboard), totals equal to the single station's: {c['totals_equal_single_station']}"
          f"; tiles planned {c['tiles_planned']}, lost {c['tiles_lost']}, counted twice "
          f"{c['tiles_counted_twice']}; redelivered {c['redelivered']}; bytes per station "
          f"{result['bytes_by_station']}; logs in {work}; wrote {out}")
    f = result["faults"]
    not_injected = ([f"the station kill (station-{STATIONS[0]}: no pass with parts still to "
                     "send came)"] if not f["station_killed"] else []) + \
        (["the worker kill (no tile was ever held unacknowledged)"]
         if not f["workers_killed"] else [])
    for what in not_injected:
        print(f"FAULT NOT INJECTED: {what}; the run shows nothing about surviving it")
    for d in c.get("totals_differing", []):
        print(f"  {d['scene_id']}: total {d['total']} here, {d['single_station_total']} on "
              "one station")
    ok = c["complete"] == c["scenes"] == c["totals_equal_single_station"] and \
        not c["tiles_lost"] and not c["tiles_counted_twice"] and not not_injected
    return 0 if ok else 1

"""The fault-injection suite: both services as real processes on loopback, one fault each run.

Every scenario starts the ground and the onboard service as their own commands
(``targetfuse-ground``, ``targetfuse-onboard``; SQLite stores, authentication on, ports
chosen at run time), with the link through a TCP relay (``Relay``), submits the same
synthetic airport scene, injects one fault at a chosen point, and waits for the scene to be
complete on the ground and confirmed onboard. The faults: kill -9 of either service mid-
downlink or mid-processing, the ground frozen (SIGSTOP) or down for a while, the ground's
store lost mid-downlink, and the relay cutting connections every few kilobytes mid-stream
(acknowledgements lost, parts sent again: duplicates); plus a battery of bad uploads
(corrupt, truncated, bombs, wrong types, bad metadata) against a running service.

After each run it measures, against a run without faults on the same scene: tiles lost (the
ground holds fewer than the onboard side decided to send), tiles counted twice (a total or
a row count above the fault-free run's), scenes stuck (not complete and confirmed within the
time limit), what is left behind (upload files, partial chunks, outbox bytes of confirmed
scenes), and 5xx answers. ``targetfuse faults`` writes the figures to
``docs/reliability/faults.json``; ``targetfuse report-reliability`` renders them into
``docs/RELIABILITY.md`` (a test checks the two agree); ``tests/reliability/test_faults.py``
runs the suite and asserts every figure is zero. ``targetfuse faults --segment`` runs the
ground segment's faults on the same stack instead (``lab.reliability.segment_faults``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.services.live import free_port, get_json, post_scene, stop_processes
from shared.api_keys import Credentials
from shared.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "docs" / "reliability" / "faults.json"
SCENE_ID = "faulty"


class Relay(threading.Thread):
    """A TCP relay from a local port to ``target``; with ``cut_every`` bytes, each
    connection is cut (both ways) once that many bytes crossed it in either direction, so
    acknowledgements are lost mid-stream and the sender must resend."""

    def __init__(self, target: int, cut_every: int | None = None):
        super().__init__(daemon=True)
        self.target, self.cut_every = target, cut_every
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cuts = 0

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._pair, args=(client,), daemon=True).start()

    def _pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        crossed = [0]

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(16384):
                    dst.sendall(data)
                    crossed[0] += len(data)
                    if self.cut_every and crossed[0] >= self.cut_every:
                        self.cuts += 1
                        break
            except OSError:
                pass
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def close(self) -> None:
        self.server.close()


@dataclass
class Stack:
    """The two services as processes, their stores under ``folder``."""

    folder: Path
    cut_every: int | None = None
    procs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = Credentials.make(self.folder / "keys")
        self.ports = {"ground": free_port(), "grpc": free_port(), "onboard": free_port()}
        self.relay = Relay(self.ports["grpc"], self.cut_every)
        self.relay.start()
        bin_dir = Path(sys.executable).parent
        self.commands = {side: [str(bin_dir / f"targetfuse-{side}")]
                         for side in ("ground", "onboard")}
        self.env = {**os.environ, **self.keys.env(),
                    "TARGETFUSE_GROUND_DB_PATH": str(self.folder / "ground" / "ground.db"),
                    "TARGETFUSE_GROUND_HTTP_PORT": str(self.ports["ground"]),
                    "TARGETFUSE_GROUND_GRPC_PORT": str(self.ports["grpc"]),
                    "TARGETFUSE_GROUND_MODEL": "aircraft", "TARGETFUSE_GROUND_THREADS": "1",
                    "TARGETFUSE_ONBOARD_DATA_DIR": str(self.folder / "onboard"),
                    "TARGETFUSE_ONBOARD_HTTP_PORT": str(self.ports["onboard"]),
                    "TARGETFUSE_ONBOARD_GROUND_TARGET": f"127.0.0.1:{self.relay.port}",
                    "TARGETFUSE_ONBOARD_MODEL": "aircraft",
                    # "auto" picks int8 or fp32 by timing at each start, and their counts
                    # differ (by 0.7 of 13 on one tile): runs compare totals, so one choice
                    "TARGETFUSE_ONBOARD_PRECISION": "fp32",
                    "TARGETFUSE_ONBOARD_BUDGET_FRACTION": "0.3",
                    # slow enough that a fault lands mid-downlink
                    "TARGETFUSE_ONBOARD_LINK_RATE_BYTES_S": "40000",
                    "TARGETFUSE_ONBOARD_LINK_BURST_BYTES": "8000",
                    "TARGETFUSE_ONBOARD_LINK_DEADLINE_S": "5"}
        self.server_errors = 0

    def url(self, side: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[side]}{path}"

    def start(self, side: str, timeout_s: float = 120.0) -> None:
        log = (self.folder / f"{side}.log").open("ab")
        self.procs[side] = subprocess.Popen(self.commands[side], env=self.env, cwd=self.folder,
                                            stdout=log, stderr=log)
        deadline = time.time() + timeout_s
        while True:
            try:
                if get_json(self.url(side, "/readyz")):
                    return
            except (OSError, urllib.error.HTTPError):
                pass
            if self.procs[side].poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{side} did not start: see {self.folder / side}.log")
            time.sleep(0.2)

    def start_all(self) -> None:
        self.start("ground")
        self.start("onboard")

    def signal(self, side: str, sig: int) -> None:
        self.procs[side].send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.procs[side].wait(30)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # a frozen process must run to stop
        stop_processes(self.procs.values(), 30)
        self.relay.close()

    def ground_rows(self) -> tuple[int, int]:
        """Partial chunks the ground still holds, and its tile rows of the scene."""
        with sqlite3.connect(self.folder / "ground" / "ground.db") as g:
            chunks = g.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            rows = g.execute("SELECT COUNT(*) FROM tiles WHERE scene_id = ?",
                             (SCENE_ID,)).fetchone()[0]
        return chunks, rows

    def get(self, side: str, path: str) -> dict | None:
        try:
            return get_json(self.url(side, path), self.keys.rest_key)
        except urllib.error.HTTPError as exc:
            self.server_errors += exc.code >= 500
            return None
        except OSError:
            return None  # down (on purpose)

    def settled(self, g: dict | None, o: dict | None) -> bool:
        """Nothing left to do: every tile received counted, the scene complete on the
        ground, and done onboard."""
        return bool(g and g.get("complete") and g["tiles_counted"] == g["tiles_received"]
                    and o and o["state"] in ("delivered", "refused", "failed"))

    def ground_report(self) -> dict | None:
        return self.get("ground", f"/v1/scenes/{SCENE_ID}")

    def onboard_record(self) -> dict | None:
        return self.get("onboard", f"/v1/scenes/{SCENE_ID}")

    def wait(self, done: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if done():
                return True
            time.sleep(poll_s)
        return False


def scene_png() -> bytes:
    from lab.synth import SceneConfig, generate_scene
    from shared.imageio import encode

    scene = generate_scene(SceneConfig(width=1536, height=1536, gsd_m=0.5, layout="airport",
                                       classes=("aircraft",)), seed=21, image_id=SCENE_ID)
    return encode(scene.load_pixels(), ".png")


# --- the faults: each waits for its point, injects, and brings the service back ---------

def _mid_downlink(stack: Stack) -> None:
    if not stack.wait(lambda: (stack.ground_report() or {}).get("tiles_received", 0) >= 1,
                      120):
        raise RuntimeError("the downlink never started")


def _restart(stack: Stack, side: str, sig: int, down_s: float = 0.0,
             lose_store: bool = False) -> None:
    stack.signal(side, sig)
    if lose_store:
        for f in (stack.folder / "ground").glob("ground.db*"):
            f.unlink()
    time.sleep(down_s)
    stack.start(side)


def kill_ground_mid_downlink(stack: Stack) -> None:
    _mid_downlink(stack)
    _restart(stack, "ground", signal.SIGKILL)


def kill_onboard_mid_downlink(stack: Stack) -> None:
    _mid_downlink(stack)
    _restart(stack, "onboard", signal.SIGKILL)


def kill_onboard_while_processing(stack: Stack) -> None:
    stack.wait(lambda: (stack.onboard_record() or {}).get("state") == "processing", 60, 0.01)
    _restart(stack, "onboard", signal.SIGKILL)


def freeze_ground(stack: Stack) -> None:
    _mid_downlink(stack)
    stack.signal("ground", signal.SIGSTOP)
    time.sleep(8)  # longer than the link's deadline: the sender's calls time out
    stack.signal("ground", signal.SIGCONT)


def ground_down_for_a_while(stack: Stack) -> None:
    _mid_downlink(stack)
    _restart(stack, "ground", signal.SIGTERM, down_s=10)


def ground_store_lost(stack: Stack) -> None:
    _mid_downlink(stack)
    _restart(stack, "ground", signal.SIGKILL, lose_store=True)


def ground_store_deleted_while_running(stack: Stack) -> None:
    """Its database removed under the running ground: it must notice (its store's file is
    not the one it opened), stop acknowledging and say so on /healthz; restarted on a fresh
    store (as an orchestrator restarts a failing liveness probe), the satellite resends."""
    _mid_downlink(stack)
    for f in (stack.folder / "ground").glob("ground.db*"):
        f.unlink()

    def unhealthy() -> bool:
        try:
            get_json(stack.url("ground", "/healthz"))
        except urllib.error.HTTPError as exc:
            return exc.code == 503
        except OSError:
            return False
        return False
    if not stack.wait(unhealthy, 30, 0.2):
        raise RuntimeError("the ground did not notice its store was removed")
    _restart(stack, "ground", signal.SIGTERM)


def no_fault(stack: Stack) -> None:
    pass


# The relay cuts every connection after this many bytes: a few tile chunks per connection.
# Over TLS each connection also carries a handshake and the reconciliation calls first; at
# 20,000 bytes a tile's part no longer fit one connection and the link made no progress
# (a part larger than one connection carries never gets through: chunks are 256 kB).
CUT_EVERY = 40_000
SCENARIOS: dict[str, tuple[Callable[[Stack], None], int | None, str]] = {
    "no fault": (no_fault, None, "the reference run"),
    "ground kill -9 mid-downlink": (kill_ground_mid_downlink, None,
                                    "after the first tile is committed"),
    "onboard kill -9 mid-downlink": (kill_onboard_mid_downlink, None,
                                     "after the first tile is committed"),
    "onboard kill -9 while processing": (kill_onboard_while_processing, None,
                                         "after the 202, while the worker plans the scene"),
    "ground frozen (SIGSTOP) 8 s": (freeze_ground, None, "mid-downlink, then SIGCONT"),
    "ground down 10 s": (ground_down_for_a_while, None, "SIGTERM mid-downlink, restarted"),
    "ground store lost": (ground_store_lost, None,
                          "kill -9 mid-downlink, its database deleted, restarted empty"),
    "ground store deleted while running": (
        ground_store_deleted_while_running, None,
        "its database removed mid-downlink, the ground left running: it stops acknowledging "
        "and its liveness fails; restarted"),
    "connections cut mid-stream": (no_fault, CUT_EVERY,
                                   f"every link connection cut after {CUT_EVERY} bytes: "
                                   "acknowledgements lost, parts sent twice"),
}


def leftovers(stack: Stack) -> dict[str, int]:
    onboard = stack.folder / "onboard"
    files = [p for p in (onboard / "incoming").glob("*")] + \
        [p for p in (onboard / "scenes").rglob("*") if p.is_file()]
    chunks, rows = stack.ground_rows()
    with sqlite3.connect(onboard / "onboard.db") as o:
        unfreed = o.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE "
                            "scene_id IN (SELECT scene_id FROM confirmations WHERE state = "
                            "'confirmed')").fetchone()[0]
        resent = o.execute("SELECT COALESCE(SUM(sends - 1), 0) FROM outbox").fetchone()[0]
    return {"files": len(files), "chunks": chunks, "outbox_bytes": unfreed, "tile_rows": rows,
            "resent": resent}


def drive(stack: Stack, png: bytes, fault: Callable[[Stack], None], timeout_s: float
          ) -> tuple[bool, dict, dict]:
    """Start the stack, submit the scene, inject the fault and wait for the scene to be
    complete and counted on the ground and settled onboard: (settled in time, the ground's
    report, the onboard record). The stack is stopped afterwards."""
    try:
        stack.start_all()
        post_scene(stack.url("onboard", "/v1/scenes"), png,
                   {"scene_id": SCENE_ID, "gsd_m": 0.5}, key=stack.keys.rest_key)
        fault(stack)

        done = stack.wait(lambda: stack.settled(stack.ground_report(),
                                                stack.onboard_record()), timeout_s, 0.2)
        return done, stack.ground_report() or {}, stack.onboard_record() or {}
    finally:
        stack.stop()


def base_row(stack: Stack, name: str, when: str, t0: float, done: bool, g: dict, o: dict,
             left: dict) -> dict:
    """What every run measures, embedded or segment."""
    planned = (o.get("result") or {}).get("tiles_by_decision", {}).get("downlinked", 0)
    received = g.get("tiles_received", 0)
    return {"scenario": name, "when": when, "seconds": round(time.time() - t0, 1),
            "tiles_downlinked": planned, "tiles_received": received,
            "lost": max(planned - received, 0),
            "stuck": int(not done or o.get("state") != "delivered"),
            "left_behind": {k: left[k] for k in ("files", "chunks", "outbox_bytes")},
            # parts the ground had lost or refused, sent again after the scene's confirmation
            "parts_resent": left["resent"],
            "server_errors": stack.server_errors, "relay_cuts": stack.relay.cuts,
            "onboard_state": o.get("state")}


def run_scenario(name: str, work: Path, png: bytes, reference: dict | None,
                 timeout_s: float = 180.0) -> dict:
    fault, cut_every, when = SCENARIOS[name]
    stack = Stack(work / name.replace(" ", "-").replace("/", ""), cut_every)
    t0 = time.time()
    done, g, o = drive(stack, png, fault, timeout_s)
    left = leftovers(stack)
    row = base_row(stack, name, when, t0, done, g, o, left)
    ref_total = reference["total"] if reference else g.get("total")
    total = g.get("total")
    over = total is not None and ref_total is not None and total > ref_total + 1e-3
    row.update({"counted_twice": int(over) + max(left["tile_rows"] - row["tiles_downlinked"],
                                                 0),
                "total": total, "total_matches_reference": total is not None and ref_total is
                not None and abs(total - ref_total) <= 1e-3})
    return row


def run_suite(work: Path, names: list[str] | None = None) -> dict:
    png = scene_png()
    names = names or list(SCENARIOS)
    reference = run_scenario("no fault", work, png, None)
    rows = [reference] + [run_scenario(n, work, png, reference) for n in names
                          if n != "no fault"]
    from lab.reliability.bad_inputs import run_bad_inputs

    bad = run_bad_inputs(work / "bad-inputs")
    return {"scene": {"id": SCENE_ID, "pixels": "1536 x 1536 synthetic airport, 0.5 m",
                      "model": "aircraft", "link_rate_bytes_s": 40000},
            "scenarios": rows, "bad_inputs": bad,
            "totals": {"runs": len(rows), "lost": sum(r["lost"] for r in rows),
                       "counted_twice": sum(r["counted_twice"] for r in rows),
                       "stuck": sum(r["stuck"] for r in rows),
                       "left_behind": sum(sum(r["left_behind"].values()) for r in rows) +
                       bad["left_behind"],
                       "server_errors": sum(r["server_errors"] for r in rows) +
                       bad["server_errors"],
                       "bad_inputs": len(bad["cases"]),
                       "bad_inputs_clear_4xx": sum(c["clear_4xx"] for c in bad["cases"])}}


def run_embedded(args: argparse.Namespace) -> int:
    """``targetfuse faults`` on the embedded deployment (``lab.reliability.cli`` dispatches)."""
    import shutil

    from lab.out_folder import out_folder

    out = out_folder(args.out, RESULTS.name) / RESULTS.name
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    names = args.scenarios.split(",") if args.scenarios else None
    result = run_suite(work, names)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for r in result["scenarios"]:
        print_row(r)
    t = result["totals"]
    print(f"  bad inputs: {t['bad_inputs_clear_4xx']} of {t['bad_inputs']} a clear 4xx; "
          f"wrote {out}")
    return 0


def print_row(r: dict) -> None:
    print(f"  {r['scenario']:38s} lost {r['lost']} twice {r['counted_twice']} stuck "
          f"{r['stuck']} left {sum(r['left_behind'].values())} 5xx {r['server_errors']} "
          f"({r['seconds']} s)")

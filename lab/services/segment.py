"""Starting the ground segment's processes on this machine: stations and counting workers on
a fresh PostgreSQL database and a fresh JetStream stream.

``constellation-live`` and the fault suite's segment mode
(``lab.reliability.segment_faults``) both start them this way, so the two run the segment as
it is deployed: a station is ``targetfuse-ground`` with ``count_here`` off (a link end and
REST, writing to PostgreSQL and announcing each committed tile on NATS), a worker is
``targetfuse-ground-worker`` (ready once its heartbeat file appears). ``Processes`` keeps
each one's command and environment so a killed one can be started again as it was.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from lab.services.live import fresh_database, get_json, stop_processes


class Processes:
    """The segment's processes by name, each logging to ``folder/<name>.log``."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.specs = folder, {}, {}

    def start(self, name: str, command: str, env: dict, ready: str | Path) -> None:
        self.specs[name] = (command, env, ready)
        log = (self.folder / f"{name}.log").open("ab")
        exe = str(Path(sys.executable).with_name(command))
        self.procs[name] = subprocess.Popen([exe], env=env, stdout=log, stderr=log,
                                            cwd=self.folder)

    def wait_ready(self, timeout_s: float = 180.0, names: list[str] | None = None) -> None:
        deadline = time.time() + timeout_s
        for name in names or list(self.specs):
            while not self.ready(name):
                if self.procs[name].poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{name} did not start: see {self.folder}/{name}.log")
                time.sleep(0.2)

    def ready(self, name: str) -> bool:
        return self._ready(self.specs[name][2])

    @staticmethod
    def _ready(ready) -> bool:
        if isinstance(ready, Path):
            return ready.exists()
        try:
            return bool(get_json(ready))
        except OSError:
            return False

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(30)

    def restart(self, name: str) -> None:
        command, env, ready = self.specs[name]
        if isinstance(ready, Path):
            ready.unlink(missing_ok=True)
        self.start(name, command, env, ready)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # a frozen process must run to stop
        stop_processes(self.procs.values(), 60)


def segment_env(database_url: str, nats_url: str, stream: str, ack_wait_s: float) -> dict:
    """What every station and worker of one segment shares: its store, its queue."""
    return {"TARGETFUSE_GROUND_DATABASE_URL": database_url,
            "TARGETFUSE_GROUND_NATS_URL": nats_url, "TARGETFUSE_GROUND_NATS_STREAM": stream,
            "TARGETFUSE_GROUND_NATS_ACK_WAIT_S": str(ack_wait_s),
            "TARGETFUSE_GROUND_MODEL": "aircraft", "TARGETFUSE_GROUND_THREADS": "1"}


def start_station(procs: Processes, name: str, env: dict, db_path: Path, http: int,
                  grpc: int) -> None:
    """A station: a link end and the REST API, counting left to the workers. ``db_path`` is
    only where its first start puts the link's keys and certificate (its store is
    PostgreSQL)."""
    procs.start(name, "targetfuse-ground", {
        **env, "TARGETFUSE_GROUND_COUNT_HERE": "false",
        "TARGETFUSE_GROUND_DB_PATH": str(db_path),
        "TARGETFUSE_GROUND_HTTP_PORT": str(http), "TARGETFUSE_GROUND_GRPC_PORT": str(grpc)},
        f"http://127.0.0.1:{http}/readyz")


def start_worker(procs: Processes, name: str, env: dict) -> None:
    """A counting worker; ready once it has touched its heartbeat (a pass finished)."""
    beat = procs.folder / f"{name}.alive"
    procs.start(name, "targetfuse-ground-worker",
                {**env, "TARGETFUSE_GROUND_WORKER_HEARTBEAT": str(beat)}, beat)


def fresh_stream(prefix: str) -> str:
    """A stream name of its own (JetStream names: letters, digits, ``_``)."""
    return f"{prefix}_{uuid.uuid4().hex[:8].upper()}"


def open_queue(nats_url: str, stream: str):
    """The suite's own view of the segment's queue (depth, redeliveries), on the stations'
    and workers' subjects."""
    from ground.tile_queue import NatsTileQueue

    return NatsTileQueue(nats_url, stream=stream, prefix=f"{stream.lower()}.tiles")


def missing(admin: str, nats_url: str) -> str | None:
    """Why the segment cannot run here (no PostgreSQL, no NATS), or None."""
    u = urlsplit(nats_url)
    try:
        socket.create_connection((u.hostname, u.port or 4222), timeout=2).close()
    except OSError as exc:
        return f"no NATS at {nats_url} ({exc}); start nats-server -js, or pass --nats"
    try:
        _, drop = fresh_database(admin, "tf_probe")
    except Exception as exc:  # noqa: BLE001 - psycopg absent, or the server not answering
        return f"no PostgreSQL at {admin} ({str(exc).strip()[:80]}); pass --postgres"
    drop()
    return None

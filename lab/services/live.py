"""Driving the two services live on this machine: each under uvicorn in a thread on a free
loopback port (``Service``), scenes posted to the onboard REST intake (``post_scene``) and
JSON answers polled (``get_json``). The demo, the link experiment and the integration tests use
these.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid


def free_port() -> int:
    """A loopback port free now (for a service started as a process to bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _auth(key: str | None) -> dict:
    """The REST key to send: the one given, else ``TARGETFUSE_API_KEY`` when set."""
    key = key or os.environ.get("TARGETFUSE_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def post_scene(url: str, png: bytes, metadata: dict, key: str | None = None) -> dict:
    boundary = uuid.uuid4().hex
    parts = [(f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
              f"{json.dumps(metadata)}\r\n").encode(),
             (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
              f'filename="scene.png"\r\nContent-Type: image/png\r\n\r\n').encode(), png,
             f"\r\n--{boundary}--\r\n".encode()]
    req = urllib.request.Request(url, data=b"".join(parts), method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", **_auth(key)})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def get_json(url: str, key: str | None = None) -> dict | None:
    """The JSON at url (with an API key when given), or None while it does not exist yet
    (404)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=_auth(key)),
                                    timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


class Service:
    """A FastAPI app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 120.0) -> int:
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("service did not start")
            time.sleep(0.05)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def wait_until_up(url: str, timeout_s: float, poll_s: float = 0.2) -> None:
    """Poll ``url`` until it answers (a service is starting); TimeoutError after
    ``timeout_s``."""
    deadline = time.time() + timeout_s
    while True:
        try:
            if get_json(url):
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")
        time.sleep(poll_s)


def dev_postgres() -> str:
    """The PostgreSQL admin URL of the development and CI machines (trust auth), or
    ``$TARGETFUSE_TEST_POSTGRES``."""
    return os.environ.get("TARGETFUSE_TEST_POSTGRES",
                          "postgresql://root@127.0.0.1:5432/postgres")


def dev_nats() -> str:
    """The NATS server (JetStream) of the development and CI machines, or
    ``$TARGETFUSE_TEST_NATS``."""
    return os.environ.get("TARGETFUSE_TEST_NATS", "nats://127.0.0.1:4222")


def stop_processes(procs, wait_s: float = 30.0) -> None:
    """Ask every process still running to stop, all at once, then wait for each; one that
    has not gone after ``wait_s`` is killed."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()


def fresh_database(admin: str, prefix: str):
    """A new PostgreSQL database beside ``admin`` (a URL with the right to create one):
    its URL, and a function that drops it."""
    import psycopg

    conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
    return admin.rsplit("/", 1)[0] + "/" + name, drop

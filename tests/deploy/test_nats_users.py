"""The segment's NATS users against a real nats-server (issue 26, finding 9): the server
started with the project's own configuration (deploy/constellation/nats.conf, the compose
file's; and the Kubernetes ConfigMap's) and the users the keys step makes; a station can
announce tiles, a worker can take and acknowledge them, and nobody else gets in: no user, a
wrong password, or a station reading work it is not given. Skipped without nats-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ground.tile_queue import NatsTileQueue
from shared.api_keys import nats_users
from shared.paths import PROJECT_ROOT

SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
pytestmark = pytest.mark.skipif(SERVER is None, reason="nats-server is not installed")
STREAM = "TARGETFUSE_TILES"  # the settings' default: the users' subjects are its own
PREFIX = f"{STREAM.lower()}.tiles"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compose(data: Path) -> tuple[str, list[str]]:
    """The compose file's nats.conf and the server's arguments (its include is relative to
    the file, as in the container: the users are mounted beside it)."""
    text = (PROJECT_ROOT / "deploy" / "constellation" / "nats.conf").read_text()
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return text.replace("store_dir: /data", f"store_dir: {data}"), \
        compose["services"]["nats"]["command"]


def _k8s(data: Path) -> tuple[str, list[str]]:
    docs = [d for d in yaml.safe_load_all((PROJECT_ROOT / "deploy" / "k8s" /
                                           "nats.yaml").read_text()) if d]
    text = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["nats.conf"]
    (container,) = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"][
        "spec"]["containers"]
    return (text.replace("/data", str(data))
            .replace("monitor_port: 8222", f"monitor_port: {_port()}")), container["args"]


@pytest.fixture(params=["compose", "k8s"])
def nats(request, tmp_path):
    # The users where each deployment mounts them beside its nats.conf.
    keys = tmp_path / ("keys" if request.param == "compose" else "users")
    data = tmp_path / "data"
    nats_users(keys)
    text, args = (_compose if request.param == "compose" else _k8s)(data)
    conf = tmp_path / "nats.conf"
    conf.write_text(text)
    port = _port()
    # The deployment's own arguments, its config file here, on a spare loopback port.
    args = [str(conf) if a == "/etc/nats/nats.conf" else a for a in args]
    proc = subprocess.Popen([SERVER, *args, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"nats://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nats-server refused the configuration: {proc.stderr.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    password = {u: (keys / f"nats-{u}-password").read_text().strip()
                for u in ("station", "worker")}
    yield url, password
    proc.terminate()
    proc.wait(10)


def _queue(url, user=None, password=None, **kw):
    return NatsTileQueue(url, stream=STREAM, prefix=PREFIX, timeout_s=3, user=user,
                         password=password, **kw)


def test_a_station_announces_and_a_worker_takes_and_acknowledges(nats):
    url, password = nats
    station = _queue(url, "station", password["station"])
    worker = _queue(url, "worker", password["worker"])
    try:
        station.publish("sat-1:a", 0)
        (delivery,) = worker.fetch(1, timeout_s=5)
        assert (delivery.scene_id, delivery.tile_index) == ("sat-1:a", 0)
        delivery.ack()
        assert worker.fetch(1, timeout_s=1) == []
        # Either finds the stream missing and makes it again (finding 9's deleted stream).
        worker.delete_stream()
        station.publish("sat-1:a", 1)
        deadline, got = time.monotonic() + 15, []
        while not got and time.monotonic() < deadline:  # the worker checks every 2 s
            got = worker.fetch(1, timeout_s=1)
        assert [d.tile_index for d in got] == [1]
    finally:
        station.close()
        worker.close()


@pytest.mark.parametrize("who", ["nobody", "wrong password", "worker as station"])
def test_nobody_else_gets_in(nats, who):
    url, password = nats
    user, pw = {"nobody": (None, None), "wrong password": ("station", "x" * 32),
                "worker as station": ("worker", password["station"])}[who]
    started = time.monotonic()
    with pytest.raises(PermissionError, match="refused .*Authorization Violation.*nats_user"):
        _queue(url, user, pw)
    assert time.monotonic() - started < 3  # said at once, not after the call's timeout


def test_a_station_cannot_publish_outside_its_subjects(nats):
    """Garbage on another subject, or the workers' acknowledgements, are refused (the
    server answers a permissions violation; JetStream never stores them)."""
    import asyncio

    import nats as nats_py

    url, password = nats
    station = _queue(url, "station", password["station"])
    try:
        async def elsewhere():
            nc = await nats_py.connect(url, user="station", password=password["station"],
                                       max_reconnect_attempts=0)
            errors = []

            async def on_error(e):
                errors.append(str(e))
            nc._error_cb = on_error
            for subject in ("other.subject", "$JS.ACK.x.y.1.1.1.1.1"):
                await nc.publish(subject, b"garbage")
            await nc.flush()
            # The server's -ERR comes back on its own schedule (after the flush's PONG under
            # load): wait for both before closing.
            for _ in range(50):
                if len(errors) >= 2:
                    break
                await asyncio.sleep(0.1)
            await nc.close()
            return errors
        errors = station._call(elsewhere())
        assert sum("permissions violation" in e.lower() for e in errors) == 2, errors
        assert station.pending() == 0
    finally:
        station.close()

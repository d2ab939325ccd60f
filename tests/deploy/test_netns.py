"""The link over real kernel shaping: two network namespaces joined by a veth pair, tbf at a
rate R on the onboard side (deploy/netns.sh, deploy/shape.sh). Skips without root, ip or tc."""

import json
import os
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RATE_BITS = 4_000_000  # 4 mbit/s = 500 kB/s
ROLES = [sys.executable, "-m", "lab.services.netns_roles"]  # one program per namespace role

from shared.api_keys import Credentials  # noqa: E402


def _can_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not (shutil.which("ip") and shutil.which("tc")):
        return "needs ip and tc (iproute2)"
    probe = subprocess.run(["ip", "netns", "add", "tfprobe"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", "tfprobe"], capture_output=True)
    return None


@pytest.fixture
def namespaces():
    reason = _can_netns()
    if reason:
        pytest.skip(reason)
    prefix = "t" + "".join(random.choices(string.ascii_lowercase, k=5))
    subprocess.run([ROOT / "deploy/netns.sh", "up", prefix], check=True, capture_output=True)
    try:
        yield prefix
    finally:
        subprocess.run([ROOT / "deploy/netns.sh", "down", prefix], capture_output=True)


def in_ns(prefix, side, *cmd, **kw):
    return ["ip", "netns", "exec", f"{prefix}-{side}", *cmd]


def test_a_payload_crosses_the_shaped_link_whole(namespaces, tmp_path):
    """Delivery and bytes under tbf; the goodput figure is benchmarks/link_goodput.py's."""
    from ground.store import SQLiteStore

    prefix = namespaces
    shaped = subprocess.run(in_ns(prefix, "onboard", str(ROOT / "deploy/shape.sh"), "apply",
                                  "--dev", f"{prefix}-ob0", "--rate", f"{RATE_BITS}bit"),
                            capture_output=True, text=True)
    assert shaped.returncode == 0, shaped.stderr
    assert "tbf" in shaped.stderr or "netem" in shaped.stderr
    keys = {**os.environ, **Credentials.make(tmp_path / "keys", hosts=("192.0.2.2",)).env()}
    ground = subprocess.Popen(in_ns(prefix, "ground", *ROLES, "ground",
                                    str(tmp_path / "g.db"), "120"),
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=keys)
    try:
        assert ground.stdout.readline().strip() == "ready"
        payload = 1_000_000
        out = subprocess.run(in_ns(prefix, "onboard", *ROLES, "send",
                                   str(payload), str(tmp_path / "o.db")),
                             capture_output=True, text=True, cwd=ROOT, timeout=120, env=keys)
        assert out.returncode == 0, out.stderr
        m = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        ground.kill()
        ground.wait()
    assert m["bytes"] >= payload  # payload plus the wire's framing
    tiles = SQLiteStore(tmp_path / "g.db").uncounted(100)
    assert len(tiles) == 16
    assert sum(len(t.data) for t in tiles) == 16 * (payload // 16)


def test_services_in_namespaces_count_as_the_simulator(namespaces, tmp_path):
    from ground.counter import GroundCounter
    from lab.simulator import SceneSimulator
    from lab.synth import SceneConfig, generate_scene
    from onboard.counter import OnboardCounter
    from shared.imageio import encode
    from shared.model_bundle import PairFiles, load_error_model, load_tiling
    from shared.pipeline.config import PipelineConfig

    prefix = namespaces
    subprocess.run(in_ns(prefix, "onboard", str(ROOT / "deploy/shape.sh"), "apply", "--dev",
                         f"{prefix}-ob0", "--rate", "2mbit"), check=True, capture_output=True)
    scene = generate_scene(SceneConfig(width=1536, height=1536, gsd_m=0.5, layout="airport",
                                       classes=("aircraft",)), seed=31, image_id="ns")
    png = tmp_path / "ns.png"
    png.write_bytes(encode(scene.load_pixels(), ".png"))
    env = {**os.environ, **Credentials.make(tmp_path / "keys", hosts=("192.0.2.2",)).env(),
           "TARGETFUSE_GROUND_DB_PATH": str(tmp_path / "g.db"),
           "TARGETFUSE_GROUND_THREADS": "1",
           # the ground is reached from the other namespace (loopback is the default)
           "TARGETFUSE_GROUND_GRPC_HOST": "0.0.0.0", "TARGETFUSE_GROUND_HTTP_HOST": "0.0.0.0",
           "TARGETFUSE_ONBOARD_DATA_DIR": str(tmp_path / "onboard"),
           "TARGETFUSE_ONBOARD_GROUND_TARGET": "192.0.2.2:50051",
           "TARGETFUSE_ONBOARD_BUDGET_FRACTION": "0.2",
           # the pair the simulator below counts with
           "TARGETFUSE_ONBOARD_MODEL": "aircraft", "TARGETFUSE_GROUND_MODEL": "aircraft",
           # one precision on both sides of the comparison ("auto" picks by timing)
           "TARGETFUSE_ONBOARD_PRECISION": "fp32",
           "TARGETFUSE_ONBOARD_LINK_RATE_BYTES_S": "10000000"}
    # The services' own commands, as their images' entry points run them.
    procs = [subprocess.Popen(in_ns(prefix, side, str(Path(sys.executable).with_name(
                                  f"targetfuse-{side}"))), env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for side in ("ground", "onboard")]
    try:
        out = subprocess.run(in_ns(prefix, "onboard", *ROLES, "submit", str(png),
                                   "ns", "180"), capture_output=True, text=True, cwd=ROOT,
                             timeout=240, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        live = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    sim = SceneSimulator(scene, OnboardCounter.shipped("aircraft", batch_size=8,
                                                       variant="fp32"),
                         GroundCounter.shipped("aircraft", threads=1),
                         tiling=load_tiling(PairFiles.of("aircraft")).lookup(0.5),
                         error_model=load_error_model(PairFiles.of("aircraft")))
    expected = sim.run(PipelineConfig(policy="value"), 0.2, 1.0)
    assert live["total"] == pytest.approx(expected.total, abs=1e-3)
    assert live["provenance"] == expected.tiles_by_provenance

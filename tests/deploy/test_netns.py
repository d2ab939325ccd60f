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

from .netns_helpers import GROUND, SENDER

pytestmark = [pytest.mark.netns, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RATE_BITS = 4_000_000  # 4 mbit/s = 500 kB/s


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


def test_goodput_follows_the_tbf_rate(namespaces, tmp_path):
    prefix = namespaces
    shaped = subprocess.run(in_ns(prefix, "onboard", str(ROOT / "deploy/shape.sh"), "apply",
                                  "--dev", f"{prefix}-ob0", "--rate", f"{RATE_BITS}bit"),
                            capture_output=True, text=True)
    assert shaped.returncode == 0, shaped.stderr
    assert "tbf" in shaped.stderr or "netem" in shaped.stderr
    ground = subprocess.Popen(in_ns(prefix, "ground", sys.executable, "-c", GROUND,
                                    str(tmp_path / "g.db"), "120"),
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert ground.stdout.readline().strip() == "ready"
        payload = 3_000_000
        out = subprocess.run(in_ns(prefix, "onboard", sys.executable, "-c", SENDER,
                                   str(payload), str(tmp_path / "o.db")),
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        m = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        ground.kill()
        ground.wait()
    rate = RATE_BITS / 8
    goodput = m["payload"] / m["seconds"]
    print(f"goodput {goodput:.0f} B/s at tbf {rate:.0f} B/s: ratio {goodput / rate:.3f}")
    assert 0.9 * rate <= goodput <= 1.1 * rate

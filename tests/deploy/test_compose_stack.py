"""The real compose stack (opt-in: ``pytest -m compose``; skips where no Docker engine answers).

Builds the images, brings ground, onboard and the link shaper up, submits one scene through
the onboard REST port, reads the final count from the ground, checks the shaper's log line
and that the downlink goodput stays near the shaped rate, then takes the stack down."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.compose, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PROJECT = "tfcomposetest"


def compose_cmd() -> list[str] | None:
    if shutil.which("docker"):
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if v2.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_stack_counts_a_scene_through_a_shaped_link(tmp_path):
    cmd = compose_cmd()
    if cmd is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("no Docker engine answers (here: ../shared/tools/docker-local-base.sh)")
    from lab.services.live import get_json, post_scene, wait_until_up
    from lab.synth import SceneConfig, generate_scene
    from shared.imageio import encode

    env = {"LINK_RATE": "2mbit", "ONBOARD_HTTP_PORT": "18080", "GROUND_HTTP_PORT": "18081",
           "APP_RATE_BYTES_S": "100000000", "BUDGET_FRACTION": "0.5"}
    base = [*cmd, "-p", PROJECT]
    full_env = {**os.environ, **env}
    up = subprocess.run([*base, "up", "-d", "--build"], cwd=ROOT, env=full_env,
                        capture_output=True, text=True, timeout=3600)
    assert up.returncode == 0, up.stderr[-3000:]
    try:
        deadline = time.time() + 300
        wait_until_up("http://127.0.0.1:18080/healthz", 300, poll_s=1)
        # The stack makes its own keys (the keys step): the operator's REST key from there.
        keys = subprocess.run([*base, "exec", "-T", "ground", "cat", "/keys/api-keys"],
                              cwd=ROOT, env=full_env, capture_output=True, text=True).stdout
        os.environ["TARGETFUSE_API_KEY"] = keys.split()[-1]
        scene = generate_scene(SceneConfig(width=2048, height=2048, gsd_m=0.5,
                                           layout="airport", classes=("aircraft",)), seed=5)
        post_scene("http://127.0.0.1:18080/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "compose", "gsd_m": 0.5})
        t0 = time.time()
        while True:
            g = get_json("http://127.0.0.1:18081/v1/scenes/compose")
            if g and g.get("complete"):
                break
            assert time.time() < deadline + 300, "scene not complete"
            time.sleep(0.5)
        o = get_json("http://127.0.0.1:18080/v1/scenes/compose")
        link_log = subprocess.run([*base, "logs", "link"], cwd=ROOT, env=full_env,
                                  capture_output=True, text=True).stdout
        ground_link = get_json("http://127.0.0.1:18081/v1/link")["bytes_by_time"]
        print(json.dumps({"total": g["total"], "truth": len(scene.objects),
                          "provenance": g["tiles_by_provenance"],
                          "bytes_sent": o["downlink"]["bytes_sent"],
                          "seconds": time.time() - t0, "link_log": link_log.strip()[-300:]}))
        assert g["total"] is not None and g["tiles_counted"] == g["tiles_received"]
        assert "tbf" in link_log or "netem" in link_log
        # Goodput over the tiles' arrival times, against the shaped 2 mbit/s (250 kB/s).
        if len(ground_link) >= 3:
            span = ground_link[-1][0] - ground_link[0][0]
            carried = sum(b for _, b in ground_link[1:])
            goodput = carried / max(span, 1e-6)
            print(f"goodput {goodput:.0f} B/s vs 250000 B/s shaped")
            assert goodput <= 1.1 * 250_000
    finally:
        subprocess.run([*base, "down", "-v"], cwd=ROOT, env=full_env, capture_output=True,
                       timeout=600)

"""Both services on loopback (ports chosen at run time): totals equal the offline simulator's,
the byte budget holds, and a ground restart in the middle of a downlink loses nothing and
counts nothing twice."""

import time

import pytest

from ground.app import create_app as ground_app
from ground.settings import GroundSettings
from lab.services.live import Service, get_json, post_scene
from lab.simulator import SceneSimulator
from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app as onboard_app
from onboard.counter import OnboardCounter
from onboard.settings import OnboardSettings
from shared.api_keys import Credentials
from shared.imageio import encode
from shared.model_bundle import PairFiles, load_error_model, load_tiling
from shared.pipeline.config import PipelineConfig

pytestmark = pytest.mark.integration
# The service's default ("auto") picks int8 or fp32 by timing at start, differently under
# load, and they count differently: live and simulated totals are compared on one choice.
PRECISION = "fp32"


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SceneConfig(width=1536, height=1536, gsd_m=0.5, layout="airport",
                                      classes=("aircraft",)), seed=21, image_id="it")


def simulated_total(scene, budget, exploration_share=0.0):
    from ground.counter import GroundCounter

    sim = SceneSimulator(scene, OnboardCounter.shipped("aircraft", batch_size=8,
                                                       variant=PRECISION),
                         GroundCounter.shipped("aircraft", threads=1),
                         tiling=load_tiling(PairFiles.of("aircraft")).lookup(0.5),
                         error_model=load_error_model(PairFiles.of("aircraft")))
    r = sim.run(PipelineConfig(policy="value", exploration_share=exploration_share), budget,
                1.0)
    return r, sim.raw_bytes(90)


def wait_complete(o_port, g_port, sid, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        gr = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/{sid}")
        if gr and gr.get("complete"):
            return get_json(f"http://127.0.0.1:{o_port}/v1/scenes/{sid}"), gr
        time.sleep(0.2)
    raise AssertionError(f"{sid} not complete")


@pytest.fixture(autouse=True)
def keys(tmp_path, monkeypatch):
    """Authentication on, as by default: the services' keys, and the operator's REST key in
    the environment, where ``lab.services.live``'s requests take it from."""
    creds = Credentials.make(tmp_path / "keys")
    monkeypatch.setenv("TARGETFUSE_API_KEY", creds.rest_key)
    return creds


def start(tmp_path, grpc_port=0, **settings):
    # The aircraft pair, which the simulator figures are computed with.
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=grpc_port,
                                      db_path=tmp_path / "ground.db", threads=1,
                                      model="aircraft",
                                      **Credentials.make(tmp_path / "keys").ground(),
                                      **settings))
    ground = Service(g_app)
    g_port = ground.start()
    return g_app, ground, g_port


def start_onboard(tmp_path, grpc_port, **settings):
    settings = {"budget_fraction": 0.2, "link_rate_bytes_s": 5e6, "model": "aircraft",
                "precision": PRECISION,
                **Credentials.make(tmp_path / "keys").onboard(), **settings}
    onboard = Service(onboard_app(OnboardSettings(
        data_dir=tmp_path / "onboard", ground_target=f"127.0.0.1:{grpc_port}", **settings)))
    return onboard, onboard.start()


def test_live_totals_equal_the_simulator_and_respect_the_budget(tmp_path, scene):
    g_app, ground, g_port = start(tmp_path)
    onboard, o_port = start_onboard(tmp_path, g_app.state.grpc_port)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "it", "gsd_m": 0.5})
        ob, gr = wait_complete(o_port, g_port, "it")
    finally:
        onboard.stop()
        ground.stop()
    expected, raw = simulated_total(scene, 0.2)
    assert gr["total"] == pytest.approx(expected.total, abs=1e-3)
    assert gr["tiles_by_provenance"] == expected.tiles_by_provenance
    assert ob["result"]["downlink_bytes_planned"] <= 0.2 * raw
    assert gr["downlink_bytes"] == ob["result"]["downlink_bytes_planned"]


def test_live_exploration_equals_the_simulator_and_the_ground_keeps_its_tiles(tmp_path,
                                                                             scene):
    """Exploration on (the most allowed, so this scene draws): the same tiles go down as in
    the simulator, flagged; the ground's total is the simulator's and its store holds each
    exploration tile with the onboard count and confidence beside its own count."""
    import numpy as np

    from ground.store import SQLiteStore

    g_app, ground, g_port = start(tmp_path)
    onboard, o_port = start_onboard(tmp_path, g_app.state.grpc_port, exploration_share=0.2)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "it", "gsd_m": 0.5})  # the simulator's scene id: its draw
        ob, gr = wait_complete(o_port, g_port, "it")
    finally:
        onboard.stop()
        ground.stop()
    expected, raw = simulated_total(scene, 0.2, exploration_share=0.2)
    explored = np.flatnonzero(expected.plan.decisions.explored).tolist()
    assert explored  # this scene draws at least one tile
    assert gr["total"] == pytest.approx(expected.total, abs=1e-3)
    assert gr["tiles_by_provenance"] == expected.tiles_by_provenance
    assert [t["index"] for t in gr["per_tile"] if t["exploration"]] == explored
    assert ob["result"]["downlink_bytes_planned"] <= 0.2 * raw
    store = SQLiteStore(tmp_path / "ground.db")
    held = store.explored_tiles()
    store.close()
    assert sorted(t.tile_index for t in held) == explored
    for t in held:
        assert t.onboard_count == pytest.approx(expected.plan.onboard[t.tile_index], abs=1e-4)
        assert t.confidence == pytest.approx(expected.plan.confidence[t.tile_index], abs=1e-4)
        assert t.ground_count is not None


def test_the_ground_on_postgresql_counts_as_on_sqlite(tmp_path, scene, postgres_url):
    """The ground segment's shared store (PostgreSQL) behind the same service: the same
    total as the simulator (and so as the embedded store)."""
    g_app, ground, g_port = start(tmp_path, database_url=postgres_url)
    onboard, o_port = start_onboard(tmp_path, g_app.state.grpc_port)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "pg", "gsd_m": 0.5})
        ob, gr = wait_complete(o_port, g_port, "pg")
    finally:
        onboard.stop()
        ground.stop()
    expected, _ = simulated_total(scene, 0.2)
    assert gr["total"] == pytest.approx(expected.total, abs=1e-3)
    assert gr["tiles_by_provenance"] == expected.tiles_by_provenance
    assert not (tmp_path / "ground.db").exists()  # nothing went to the SQLite file


def test_a_station_and_a_separate_counting_worker_on_postgresql_and_nats(tmp_path, scene,
                                                                        postgres_url,
                                                                        nats_url):
    """The distributed ground: a station that only receives (count_here off) announces each
    tile on JetStream; a counting worker of its own process (targetfuse-ground-worker)
    counts them into the shared PostgreSQL store: the simulator's total."""
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    stream = f"TFIT_{uuid.uuid4().hex[:8].upper()}"
    seg = {"database_url": postgres_url, "nats_url": nats_url, "nats_stream": stream}
    g_app, ground, g_port = start(tmp_path, count_here=False, **seg)
    env = {**os.environ, "TARGETFUSE_GROUND_MODEL": "aircraft",
           "TARGETFUSE_GROUND_THREADS": "1",
           **{f"TARGETFUSE_GROUND_{k.upper()}": v for k, v in seg.items()}}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("targetfuse-ground-worker"))],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    onboard, o_port = start_onboard(tmp_path, g_app.state.grpc_port)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "seg", "gsd_m": 0.5})
        ob, gr = wait_complete(o_port, g_port, "seg")
    finally:
        onboard.stop()
        ground.stop()
        worker.terminate()
        err = worker.communicate(timeout=60)[1].decode()
        from ground.tile_queue import NatsTileQueue

        q = NatsTileQueue(nats_url, stream=stream, prefix=f"{stream.lower()}.tiles")
        q.delete_stream()
        q.close()
    assert worker.returncode == 0, err[-2000:]
    expected, _ = simulated_total(scene, 0.2)
    assert gr["total"] == pytest.approx(expected.total, abs=1e-3)
    assert gr["tiles_counted"] == expected.tiles_by_provenance["downlinked"]


def test_a_ground_restart_mid_downlink_loses_nothing(tmp_path, scene):
    expected, _ = simulated_total(scene, 0.2)
    downlinked = expected.tiles_by_provenance["downlinked"]
    assert downlinked >= 2
    g_app, ground, g_port = start(tmp_path)
    grpc_port = g_app.state.grpc_port
    # A slow link (40 kB/s): the downlink takes seconds, so the restart lands in the middle.
    onboard, o_port = start_onboard(tmp_path, grpc_port, link_rate_bytes_s=40_000,
                                    link_burst_bytes=8_000, link_deadline_s=5)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "it", "gsd_m": 0.5})
        deadline = time.time() + 60
        while True:  # wait until some, not all, of the scene has arrived
            gr = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/it")
            if gr and gr["tiles_received"] >= 1:
                assert gr["tiles_received"] < downlinked  # the restart is mid-downlink
                break
            assert time.time() < deadline
            time.sleep(0.05)
        ground.stop()
        time.sleep(1.0)
        g_app, ground, g_port = start(tmp_path, grpc_port=grpc_port)
        ob, gr = wait_complete(o_port, g_port, "it")
        deadline = time.time() + 30
        # Confirmed end to end: the onboard side's reconciliation may come a moment after
        # the ground's completion (the services still running, to be asked).
        while ob["state"] != "delivered" and time.time() < deadline:
            time.sleep(0.2)
            ob = get_json(f"http://127.0.0.1:{o_port}/v1/scenes/it")
    finally:
        onboard.stop()
        ground.stop()
    assert gr["total"] == pytest.approx(expected.total, abs=1e-3)
    assert gr["tiles_counted"] == gr["tiles_received"] == \
        expected.tiles_by_provenance["downlinked"]
    assert ob["downlink"]["parts_queued"] == 0
    assert ob["state"] == "delivered"


def test_the_dashboard_shows_scenes_tiles_and_totals(tmp_path, scene, keys):
    import re
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    g_app, ground, g_port = start(tmp_path)
    onboard, o_port = start_onboard(tmp_path, g_app.state.grpc_port)
    try:
        post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(scene.load_pixels(), ".png"),
                   {"scene_id": "dash", "gsd_m": 0.5})
        _, gr = wait_complete(o_port, g_port, "dash")
        def page(url):
            return subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu",
                 "--virtual-time-budget=8000", "--dump-dom", url],
                capture_output=True, text=True, timeout=120).stdout
        dom = page(f"http://127.0.0.1:{g_port}/#key={keys.rest_key}")
        no_key = page(f"http://127.0.0.1:{g_port}/")
        wrong_key = page(f"http://127.0.0.1:{g_port}/#key=not-a-key-of-this-ground")
        api = page(f"http://127.0.0.1:{g_port}/docs#key={keys.rest_key}")
    finally:
        onboard.stop()
        ground.stop()
    assert 'data-ready="1"' in dom
    row = re.search(r'<tr data-scene="dash">.*?<td class="total">([\d.]+)</td>', dom, re.S)
    assert row and float(row.group(1)) == pytest.approx(gr["total"], abs=0.06)
    cells = re.findall(r'class="(?:cell )?tile (accepted|downlinked|reused|discarded|'
                       r'uncounted)"', dom)
    assert len(cells) == gr["tiles"]
    assert cells.count("downlinked") == gr["tiles_by_provenance"]["downlinked"]
    # The scene's quicklook, with each tile's count and provenance over it, and on the map
    # when the footprint is known.
    assert gr["quicklook"] and f'data-quicklook="{gr["quicklook"]["bytes"]}"' in dom
    assert "background-image:url(blob:" in dom.replace(" ", "")
    assert "bytes received over the link" in dom
    # The satellite that sent the scene, with the bundle its scene was planned under.
    sats = re.search(r'<table id="satellites">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    assert sats.count("<tr>") == 1 and "<td>0</td>" in sats
    # The link chart has both axes with their units and ticks, its title above the plot
    # (read from the drawn SVG: the page's script holds the same words).
    chart = re.search(r'<svg id="link".*?</svg>', dom, re.S).group(0)
    assert 'class="x-label"' in chart and "time since the" in chart and "(s)</text>" in chart
    assert 'class="y-label"' in chart and "received (kB)" in chart
    assert chart.count('class="axis"') == 2 and chart.count('class="grid"') >= 2
    title = re.search(r'<text class="title" x="(\d+)" y="(\d+)"', chart)
    assert title and int(title.group(2)) < 28  # above the plot area, off the line
    # No key, or a wrong one: the page says which, instead of an empty table.
    assert 'data-status="401"' in no_key and '<span id="auth-message">No API key' in no_key
    assert 'data-status="403"' in wrong_key and \
        '<span id="auth-message">Wrong API key' in wrong_key
    assert not re.search(r'<tr data-scene="\w', no_key + wrong_key)
    # The API reference opens in the browser with the key entered once.
    assert 'data-ready="1"' in api and 'data-route="GET /v1/scenes"' in api
    # Per-class totals and the class picker, filled from the scenes' classes.
    assert '<option value="aircraft">aircraft</option>' in dom
    per_class = re.search(r'<td class="by-class">aircraft ([\d.]+)</td>', dom)
    assert per_class and float(per_class.group(1)) == pytest.approx(
        gr["by_class"]["aircraft"]["total"], abs=0.06)

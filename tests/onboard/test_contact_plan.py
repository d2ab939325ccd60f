"""The onboard service on a contact plan: the window open now names its station and rate,
the throttle plans against the bytes that window can carry at its rate (the scene's tiles
then start down to the real ground servicer through it), and each window's parts go to its
own station's ground end."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app
from onboard.contact_plan import contact_schedule
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.settings import OnboardSettings
from shared.imageio import encode
from shared.orbits.plan import ContactWindow, write_plan
from shared.pipeline.budgets import raw_tile_bytes
from shared.pipeline.config import PipelineConfig
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks

RATE = 1000.0  # bytes/s: a low pass, far below the configured link rate
LEFT = 60.0  # seconds of the window still to come when the scene arrives


def test_a_scene_is_throttled_to_the_planned_window_and_goes_down_in_it(tmp_path):
    plan = tmp_path / "plan.json"
    # Plan times are relative here; the shift replays them from now.
    write_plan(plan, [ContactWindow("SAT-1", "Svalbard", 0.0, LEFT + 5.0, 25.0, RATE, 9000.0),
                      ContactWindow("SAT-1", "Kiruna", 5000.0, 5600.0, 60.0, 8000.0, 9e3),
                      ContactWindow("SAT-2", "Kiruna", 0.0, 600.0, 60.0, 8000.0, 9e3)],
               start=0.0, end=6000.0)
    gs = GroundSettings(auth=False, grpc_host="127.0.0.1", grpc_port=0,
                        db_path=tmp_path / "g.db", link_tls=False)  # TLS: test_link_tls*
    store = SQLiteStore(gs.db_path)
    server, port = create_server(gs, store)
    server.start()
    try:
        settings = OnboardSettings(
            auth=False, link_tls=False, data_dir=tmp_path / "onboard",
            ground_target=f"127.0.0.1:{port}",
            link_rate_bytes_s=5e7, budget_fraction=1.0, contact_plan_file=plan,
            contact_plan_satellite="SAT-1", contact_plan_shift_s=time.time() - 5.0)
        img = generate_scene(SceneConfig(width=1024, height=768, gsd_m=0.5,
                                         layout="airport", classes=("aircraft",)), seed=2)
        png = encode(img.load_pixels(), ".png")
        with TestClient(create_app(settings)) as client:
            link = client.get("/v1/link").json()
            assert link["window_open"] and link["station"] == "Svalbard"
            assert link["rate_bytes_s"] == RATE
            r = client.post("/v1/scenes", files={"file": ("s.png", png, "image/png")},
                            data={"metadata": json.dumps({"scene_id": "planned-1",
                                                          "gsd_m": 0.5})})
            assert r.status_code == 202, r.text
            deadline = time.time() + 50
            while (rec := client.get("/v1/scenes/planned-1").json())["state"] not in (
                    "downlinking", "delivered", "failed") and time.time() < deadline:
                time.sleep(0.2)
            # Downlinking at 1 kB/s: the window takes about its length to carry them all.
            assert rec["state"] in ("downlinking", "delivered"), rec
            res = rec["result"]
            # What the rest of this window carries at its rate, not at the configured rate
            # (which would have allowed the whole scene: budget_fraction 1).
            assert 0 < res["downlink_budget_bytes"] <= RATE * (LEFT + 5.0)
            raw = raw_tile_bytes(img.load_pixels(), res["tile_size"],
                                 PipelineConfig().raw_quality)
            assert raw > 1.5 * RATE * (LEFT + 5.0)  # so the window, not the scene, bound it
            assert res["downlink_bytes_planned"] <= res["downlink_budget_bytes"]
            deadline = time.time() + 20
            while client.get("/v1/link").json()["bytes_sent"] == 0 and time.time() < deadline:
                time.sleep(0.2)
            assert client.get("/v1/link").json()["bytes_sent"] > 0
    finally:
        server.stop(None)
        store.close()


def test_a_horizon_plans_the_scene_against_the_later_windows_too(tmp_path):
    """With plan_horizon_s past the Kiruna pass, the budget is no longer the rest of this
    window: the scene is planned against what both windows carry."""
    plan = tmp_path / "plan.json"
    write_plan(plan, [ContactWindow("SAT-1", "Svalbard", 0.0, LEFT + 5.0, 25.0, RATE, 9000.0),
                      ContactWindow("SAT-1", "Kiruna", 5000.0, 5600.0, 60.0, 8000.0, 9e3)],
               start=0.0, end=6000.0)
    settings = OnboardSettings(
        auth=False, data_dir=tmp_path / "onboard", ground_target="127.0.0.1:9",
        link_rate_bytes_s=5e7, budget_fraction=1.0, contact_plan_file=plan,
        plan_horizon_s=6000.0, contact_plan_shift_s=time.time() - 5.0)
    img = generate_scene(SceneConfig(width=1024, height=768, gsd_m=0.5,
                                     layout="airport", classes=("aircraft",)), seed=2)
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/scenes", files={"file": ("s.png", encode(img.load_pixels(),
                                                                      ".png"), "image/png")},
                        data={"metadata": json.dumps({"scene_id": "far", "gsd_m": 0.5})})
        assert r.status_code == 202, r.text
        deadline = time.time() + 50
        while (rec := client.get("/v1/scenes/far").json())["state"] not in (
                "downlinking", "delivered", "failed"):
            assert time.time() < deadline, rec
            time.sleep(0.2)
    assert rec["state"] == "downlinking", rec
    res = rec["result"]
    raw = raw_tile_bytes(img.load_pixels(), res["tile_size"], PipelineConfig().raw_quality)
    # The scene's own budget (all of it, fraction 1) binds, not the first window.
    assert res["downlink_budget_bytes"] == pytest.approx(raw, rel=1e-6)
    assert raw > RATE * (LEFT + 5.0)


def _scene(scene_id, data):
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=256, height=256, tile_size=256, rows=1, cols=1))
    s = link_pb2.SceneSummary(scene_id=scene_id, tiles=[link_pb2.TileDecision(
        index=0, decision=link_pb2.DOWNLINKED, onboard_count=1.0)])
    return [link_pb2.DownlinkMessage(header=h), link_pb2.DownlinkMessage(summary=s),
            *(link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(scene_id, 0, 0, 0, data,
                                                                    90, chunk_bytes=2000))]


def test_each_window_sends_to_its_own_station(tmp_path, jpeg_tile):
    grounds = {}
    for name in ("Svalbard", "Kiruna", "default"):
        gs = GroundSettings(auth=False, grpc_host="127.0.0.1", grpc_port=0,
                            db_path=tmp_path / f"{name}.db", link_tls=False)  # TLS: test_link_tls*
        store = SQLiteStore(gs.db_path)
        server, port = create_server(gs, store)
        server.start()
        grounds[name] = (server, store, f"127.0.0.1:{port}")
    try:
        plan = tmp_path / "plan.json"
        write_plan(plan, [ContactWindow("S", "Svalbard", 0, 600, 50.0, 1e6, 1e6),
                          ContactWindow("S", "Kiruna", 1000, 1600, 50.0, 1e6, 1e6),
                          ContactWindow("S", "Troll", 2000, 2600, 50.0, 1e6, 1e6)])
        settings = OnboardSettings(
            auth=False, link_tls=False, ground_target=grounds["default"][2],
            contact_plan_file=plan,
            station_targets=json.dumps({n: grounds[n][2] for n in ("Svalbard", "Kiruna")}))
        now = [100.0]
        box = Outbox(tmp_path / "o.db")
        client = LinkClient(settings.ground_target, box, TokenBucket(1e7),
                            contact_schedule(settings),
                            deadline_s=10, clock=lambda: now[0],
                            station_targets=settings.station_target_map())
        for t, scene in ((100.0, "over-svalbard"), (1100.0, "over-kiruna"),
                         (2100.0, "over-troll")):
            now[0] = t
            box.put_scene(_scene(scene, jpeg_tile(3000, seed=int(t))))
            while client.drain_once():
                pass
        held = {name: {s for s in ("over-svalbard", "over-kiruna", "over-troll")
                       if g[1].committed(s).summary} for name, g in grounds.items()}
        # Troll is in no map: its window goes to the default ground.
        assert held == {"Svalbard": {"over-svalbard"}, "Kiruna": {"over-kiruna"},
                        "default": {"over-troll"}}
        box.close()
    finally:
        for server, store, _ in grounds.values():
            server.stop(None)
            store.close()


def test_station_targets_must_be_a_json_object():
    for bad in ('["a"]', '{"Svalbard": 5}', "{", '{"Svalbard": ""}'):
        with pytest.raises(ValueError, match="station_targets"):
            OnboardSettings(station_targets=bad)

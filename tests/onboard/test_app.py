"""The onboard service through its REST API, with the real counter and a real ground link."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app
from onboard.settings import OnboardSettings
from shared.imageio import encode


@pytest.fixture(scope="module")
def scene_png():
    img = generate_scene(SceneConfig(width=1024, height=768, gsd_m=0.5, layout="airport",
                                     classes=("aircraft",)), seed=2)
    return encode(img.load_pixels(), ".png")


@pytest.fixture
def ground(tmp_path):
    settings = GroundSettings(auth=False, link_tls=False,  # TLS: test_link_tls*
                              grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db")
    store = SQLiteStore(settings.db_path)
    server, port = create_server(settings, store)
    server.start()
    yield store, port
    server.stop(None)
    store.close()


def onboard_settings(tmp_path, port, **kw):
    return OnboardSettings(auth=False, link_tls=False,
                           data_dir=tmp_path / "onboard", ground_target=f"127.0.0.1:{port}",
                           link_rate_bytes_s=5e6, budget_fraction=0.3, **kw)


def wait_for(client, scene_id, states, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = client.get(f"/v1/scenes/{scene_id}").json()
        if rec["state"] in states:
            return rec
        time.sleep(0.1)
    raise AssertionError(f"scene {scene_id} stuck in {rec['state']}")


def test_a_scene_goes_from_upload_to_the_ground(tmp_path, ground, scene_png):
    store, port = ground
    with TestClient(create_app(onboard_settings(tmp_path, port))) as client:
        r = client.post("/v1/scenes", files={"file": ("s.png", scene_png, "image/png")},
                        data={"metadata": json.dumps({"scene_id": "airport-1", "gsd_m": 0.5})})
        assert r.status_code == 202, r.text
        assert r.json()["scene_id"] == "airport-1"
        assert r.json()["status_url"].endswith("/v1/scenes/airport-1")
        rec = wait_for(client, "airport-1", {"delivered", "failed"})
        assert rec["state"] == "delivered", rec
        res = rec["result"]
        side = res["tile_size"]  # the shipped counter's natural tile at 0.5 m
        assert sum(res["tiles_by_decision"].values()) == res["tiles"] == \
            -(-1024 // side) * -(-768 // side)
        assert res["downlink_bytes_planned"] <= res["downlink_budget_bytes"]
        held = store.committed("airport-1")
        assert held.header and held.summary
        # The quicklook went down with the summary; its bytes came out of the scene's budget
        # before the tiles were chosen (downlink_budget_bytes is what was left for them).
        look = res["quicklook"]
        assert look["sent"] and look["bytes"] == len(store.summary("airport-1").quicklook)
        assert len(held.tiles) == res["tiles_by_decision"].get("downlinked", 0)
        # decided: the upload is gone (its parts are in the outbox), confirmed: their bytes
        assert not list((tmp_path / "onboard" / "scenes").rglob("*.png"))
        assert rec["downlink"]["parts_refused"] == 0
        link = client.get("/v1/link").json()
        assert link["window_open"] and link["bytes_queued"] == 0 and link["bytes_sent"] > 0
        assert res["gsd_m"] == 0.5 and res["gsd_source"] == "metadata" and res["warnings"] == []
        metrics = client.get("/metrics").text
        assert "targetfuse_onboard_bytes_sent" in metrics
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/scenes/nope").status_code == 404
        # The list, like the ground's: every scene with its state and onboard total.
        listed = client.get("/v1/scenes").json()["scenes"]
        assert [s["scene_id"] for s in listed] == ["airport-1"]
        assert listed[0]["state"] == "delivered"
        assert listed[0]["onboard_total"] == res["onboard_total"]
        assert listed[0]["downlink"] == rec["downlink"]
        assert client.get("/v1/scenes?limit=0").status_code == 422


def test_an_unknown_gsd_is_said_in_the_answer_and_the_log(tmp_path, ground, scene_png,
                                                          caplog):
    _, port = ground
    with TestClient(create_app(onboard_settings(tmp_path, port))) as client:
        r = client.post("/v1/scenes", files={"file": ("s.png", scene_png, "image/png")},
                        data={"metadata": json.dumps({"scene_id": "no-gsd"})})
        assert r.status_code == 202, r.text
        rec = wait_for(client, "no-gsd", {"delivered", "failed"})
    res = rec["result"]
    assert res["gsd_m"] is None and res["gsd_source"] is None
    assert len(res["warnings"]) == 1 and "ground sample distance unknown" in res["warnings"][0]
    assert any("ground sample distance unknown" in m for m in caplog.messages)


@pytest.mark.parametrize("payload,meta,status,words", [
    (b"hello, not an image", None, 415, "not a PNG"),
    ("truncate", None, 400, "truncated"),
    ("ok", "{not json", 422, "JSON"),
    ("ok", json.dumps({"gsd_m": -1}), 422, "gsd_m"),
    ("ok", json.dumps({"colour": "red"}), 422, "colour"),
    ("ok", json.dumps({"geotransform": [0, 1, 0]}), 422, "geotransform"),
])
def test_bad_uploads_get_the_right_4xx_and_change_nothing(tmp_path, ground, scene_png,
                                                          payload, meta, status, words):
    _, port = ground
    body = {"ok": scene_png, "truncate": scene_png[: len(scene_png) // 2]}.get(payload, payload)
    with TestClient(create_app(onboard_settings(tmp_path, port), start=False)) as client:
        data = {"metadata": meta} if meta else {}
        r = client.post("/v1/scenes", files={"file": ("x", body, "image/png")}, data=data)
        assert r.status_code == status, r.text
        assert words.lower() in r.json()["detail"].lower()
    assert not list((tmp_path / "onboard" / "scenes").glob("*")) \
        if (tmp_path / "onboard" / "scenes").exists() else True


def sparse_geotiff(path, side: int, gsd_m: float):
    """A ``side`` x ``side`` RGB GeoTIFF in UTM at ``gsd_m`` whose blocks are all unwritten
    (GDAL's sparse files: they read as zeros), so a 900 MP scene is a few kB on disk and in
    memory: the georeference is in the file only."""
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=3,
                       dtype="uint8", crs="EPSG:32631", tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate", sparse_ok=True,
                       transform=Affine(gsd_m, 0, 500000.0, 0, -gsd_m, 4500000.0)):
        pass
    return path


def test_a_scene_georeferenced_in_its_file_only_is_sized_by_that_gsd_at_intake(tmp_path,
                                                                              ground):
    """30k x 30k at 2 m/px with no GSD in the metadata: cut at the GSD the worker uses (the
    file's), it makes 469 x 469 = 219,961 tiles, past the link's 40,000 for one scene, and
    is refused before its 202 (at the counter's own GSD it would have looked like 13,924)."""
    _, port = ground
    tif = sparse_geotiff(tmp_path / "big.tif", 30_000, 2.0)
    assert tif.stat().st_size < 1 << 20
    with TestClient(create_app(onboard_settings(tmp_path, port), start=False)) as client:
        r = client.post("/v1/scenes", files={"file": ("big.tif", tif.read_bytes(),
                                                      "image/tiff")},
                        data={"metadata": json.dumps({"scene_id": "big"})})
        assert r.status_code == 413, r.text
        assert "219961 tiles" in r.json()["detail"] and "40000" in r.json()["detail"]
        assert client.get("/v1/scenes/big").status_code == 404


def test_limits_and_a_full_queue(tmp_path, ground, scene_png):
    _, port = ground
    small = onboard_settings(tmp_path, port, max_upload_bytes=4096, queue_size=1)
    with TestClient(create_app(small, start=False)) as client:
        r = client.post("/v1/scenes", files={"file": ("s.png", scene_png, "image/png")})
        assert r.status_code == 413
        # A body far past the limit is refused while it streams: nothing reaches the disk.
        big = bytes(8 << 20)
        r = client.post("/v1/scenes", files={"file": ("s.png", big, "image/png")})
        assert r.status_code == 413 and "upload exceeds" not in r.text  # not the intake's
        spooled = list((tmp_path / "onboard" / "incoming").glob("*")) \
            if (tmp_path / "onboard" / "incoming").exists() else []
        assert not spooled
    few = onboard_settings(tmp_path, port, max_pixels=1000, queue_size=1)
    with TestClient(create_app(few, start=False)) as client:
        r = client.post("/v1/scenes", files={"file": ("s.png", scene_png, "image/png")})
        assert r.status_code == 413 and "pixels" in r.json()["detail"]
    one = onboard_settings(tmp_path, port, queue_size=1)
    with TestClient(create_app(one, start=False)) as client:  # no worker: the queue fills
        files = {"file": ("s.png", scene_png, "image/png")}
        assert client.post("/v1/scenes", files=files,
                           data={"metadata": '{"scene_id": "a"}'}).status_code == 202
        r = client.post("/v1/scenes", files=files)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    with TestClient(create_app(onboard_settings(tmp_path, port), start=False)) as client:
        r = client.post("/v1/scenes", files=files, data={"metadata": '{"scene_id": "a"}'})
        assert r.status_code == 409  # accepted work persisted across the restart


def test_settings_refuse_bad_values(tmp_path):
    with pytest.raises(ValueError):
        OnboardSettings(policy="greedy")
    with pytest.raises(ValueError):
        OnboardSettings(contact_windows="[[1, 2, 3]]")
    with pytest.raises(ValueError):
        OnboardSettings(link_rate_bytes_s=0)


def test_a_geotiff_is_read_window_by_window_with_the_same_result(tmp_path, scene_png):
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    from onboard.counter import OnboardCounter
    from onboard.link.outbox import Outbox
    from onboard.processing import SceneProcessor
    from onboard.scene_pixels import RasterSource
    from onboard.scenes_db import ScenesDB
    from shared.imageio import read_rgb

    png = tmp_path / "s.png"
    png.write_bytes(scene_png)
    pixels = read_rgb(png)
    tif = tmp_path / "s.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=pixels.shape[1], height=pixels.shape[0],
                       count=3, dtype="uint8", crs="EPSG:32631", tiled=True,
                       blockxsize=256, blockysize=256,
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 4500000.0)) as dst:
        dst.write(pixels.transpose(2, 0, 1))
    source = RasterSource(tif)
    fp, gsd = source.georeference()
    assert gsd == 0.5 and fp.geotransform == (500000.0, 0.5, 0.0, 4500000.0, 0.0, -0.5)
    assert np.array_equal(source[100:300, 50:400], pixels[100:300, 50:400])
    source.close()
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "ob")
    results = []
    for path, meta in ((png, {"gsd_m": 0.5}), (tif, {})):
        box = Outbox(tmp_path / f"{path.suffix}.db")
        proc = SceneProcessor(settings, ScenesDB(box), OnboardCounter.shipped("aircraft"))
        seen = []
        proc.on_tiles = seen.extend
        r = proc.process("x", str(path), meta)
        assert len(seen) == r["tiles"]
        results.append(r)
        box.close()
    png_r, tif_r = results
    assert tif_r["per_tile"] == png_r["per_tile"]
    assert tif_r["onboard_total"] == png_r["onboard_total"]
    # Bounded memory: the reader was never asked for more than one tile's window.
    src = RasterSource(tif)
    from shared.pipeline.config import PipelineConfig
    from shared.pipeline.tiles import prepare_tiles

    prepare_tiles(src, 512, PipelineConfig(), 256)
    assert src.largest_window_px <= 512 * 512
    src.close()

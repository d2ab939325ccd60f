"""The round trip in EO forms, both services on loopback with keys on: a STAC Item submitted
with a Cloud-Optimized GeoTIFF is counted and comes back as a valid STAC Item (Label
extension) with its GeoJSON of tile counts, on the map where the COG lies; the dashboard
draws those tiles over the footprint (headless Chromium)."""

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import geojson
import pystac
import pytest
import rasterio
from pyproj import Transformer
from pystac.extensions.projection import ProjectionExtension
from rasterio.transform import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from ground.app import create_app as ground_app
from ground.settings import GroundSettings
from lab.services.live import Service, get_json
from lab.synth import SceneConfig, generate_scene
from onboard.app import create_app as onboard_app
from onboard.settings import OnboardSettings
from shared.api_keys import Credentials
from shared.stac_check import check, validator

pytestmark = pytest.mark.integration

W, H, GSD = 1024, 768, 0.5
X0, Y0 = 500000.0, 5540000.0  # UTM 32N


def make_cog(folder: Path) -> Path:
    img = generate_scene(SceneConfig(width=W, height=H, gsd_m=GSD, layout="airport",
                                     classes=("aircraft",)), seed=5)
    plain = folder / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=W, height=H, count=3, dtype="uint8",
                       crs="EPSG:32632", transform=Affine(GSD, 0, X0, 0, -GSD, Y0)) as dst:
        dst.write(img.load_pixels().transpose(2, 0, 1))
    cog = folder / "scene.cog.tif"
    subprocess.run([str(Path(sys.executable).with_name("rio")), "cogeo", "create", str(plain),
                    str(cog), "--blocksize", "256"], check=True, capture_output=True,
                   timeout=120)
    return cog


def make_item(scene_id: str) -> dict:
    to_wgs = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    xs, ys = to_wgs.transform([X0, X0 + W * GSD, X0 + W * GSD, X0, X0],
                              [Y0, Y0, Y0 - H * GSD, Y0 - H * GSD, Y0])
    ring = [[x, y] for x, y in zip(xs, ys, strict=True)]
    item = pystac.Item(scene_id, {"type": "Polygon", "coordinates": [ring]},
                       [min(xs), min(ys), max(xs), max(ys)],
                       datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
                       {"gsd": GSD, "platform": "testsat-1", "instruments": ["pan-rgb"]})
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code, proj.shape = "EPSG:32632", [H, W]
    proj.transform = [GSD, 0.0, X0, 0.0, -GSD, Y0]
    return item.to_dict(include_self_link=False)


def post(url: str, data: bytes, metadata: dict, key: str) -> tuple[int, dict]:
    boundary = "b0undary"
    body = b"".join([
        (f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
         f"{json.dumps(metadata)}\r\n").encode(),
        (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.tif"\r\n'
         "Content-Type: image/tiff\r\n\r\n").encode(), data, f"\r\n--{boundary}--\r\n".encode()])
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def fetch(url: str, key: str) -> tuple[str, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["Content-Type"], r.read()


@pytest.mark.skipif(not Path(sys.executable).with_name("rio").exists(),
                    reason="rio-cogeo is not installed (the dev extra has it)")
def test_a_stac_item_with_a_cog_comes_back_as_a_stac_item_with_its_tile_counts(tmp_path,
                                                                              monkeypatch):
    creds = Credentials.make(tmp_path / "keys")
    monkeypatch.setenv("TARGETFUSE_API_KEY", creds.rest_key)
    cog = make_cog(tmp_path)
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0, threads=1,
                                      db_path=tmp_path / "ground.db", **creds.ground()))
    ground = Service(g_app)
    g_port = ground.start()
    onboard = Service(onboard_app(OnboardSettings(
        data_dir=tmp_path / "onboard", ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
        budget_fraction=0.3, link_rate_bytes_s=5e6, **creds.onboard())))
    o_port = onboard.start()
    o_url, g_url = f"http://127.0.0.1:{o_port}", f"http://127.0.0.1:{g_port}"
    try:
        bad = make_item("rt")
        bad["properties"]["proj:transform"] = [GSD, 0.0]
        status, answer = post(f"{o_url}/v1/scenes", cog.read_bytes(), bad, creds.rest_key)
        assert status == 422 and answer["detail"].startswith(
            "STAC Item: properties.proj:transform: ")
        status, answer = post(f"{o_url}/v1/scenes", cog.read_bytes(), make_item("rt"),
                              creds.rest_key)
        assert status == 202 and answer["scene_id"] == "rt"
        deadline = time.time() + 180
        while not (gr := get_json(f"{g_url}/v1/scenes/rt")) or not gr.get("complete"):
            assert time.time() < deadline, "the scene never completed"
            time.sleep(0.2)
        ob = get_json(f"{o_url}/v1/scenes/rt")
        kind, body = fetch(f"{g_url}/v1/scenes/rt/stac", creds.rest_key)
        item_dict = json.loads(body)
        labels = item_dict["assets"]["labels"]["href"]
        fc_kind, fc_body = fetch(labels, creds.rest_key)
        dom = _dashboard_dom(g_port, creds.rest_key)
    finally:
        onboard.stop()
        ground.stop()
    assert ob["metadata"]["platform"] == "testsat-1" and ob["result"]["gsd_m"] == GSD
    assert ob["result"]["tile_size"] == 256 and ob["result"]["tiles"] == 12

    # The answer: a valid STAC Item, the Label extension carrying the per-class totals.
    assert kind.startswith("application/geo+json")
    assert check(item_dict) == []
    item = pystac.Item.from_dict(item_dict)
    validator().validate_core(item_dict, pystac.STACObjectType.ITEM, "1.1.0")
    assert item.id == "rt" and item.datetime == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    props = item.properties
    assert props["label:type"] == "vector" and "counting" in props["label:tasks"]
    assert props["label:properties"] == gr["classes"]
    overview = {o["property_key"]: o["statistics"][0]["value"]
                for o in props["label:overviews"]}
    assert overview == {c: v["total"] for c, v in gr["by_class"].items()}
    assert props["proj:code"] == "EPSG:32632" and props["gsd"] == GSD
    # Its footprint is the Item's that went in (the COG's own georeference).
    sent = shape(make_item("rt")["geometry"])
    assert shape(item.geometry).symmetric_difference(sent).area < 1e-6 * sent.area

    # The GeoJSON: every tile, adding up to the totals, covering the footprint exactly.
    assert fc_kind.startswith("application/geo+json")
    fc = geojson.loads(fc_body)
    assert fc.is_valid and len(fc["features"]) == gr["tiles"] == 12
    for c, v in gr["by_class"].items():
        assert sum(f["properties"][c] for f in fc["features"]) == pytest.approx(
            v["total"], abs=0.01)
        assert sum(f["properties"][f"onboard:{c}"] or 0 for f in fc["features"]) == \
            pytest.approx(v["onboard_total"], abs=0.01)
    downlinked = [f for f in fc["features"] if f["properties"]["decision"] == "downlinked"]
    assert len(downlinked) == gr["tiles_by_provenance"].get("downlinked", 0)
    assert all(f["properties"]["ground_counted"] for f in downlinked)
    tiles = unary_union([shape(f["geometry"]) for f in fc["features"]])
    assert tiles.symmetric_difference(sent).area < 1e-3 * sent.area

    # The dashboard draws the twelve tiles on the scene's map, each with its count.
    assert 'data-ready="1"' in dom
    assert re.search(r'class="scene-map[^"]*" data-scene="rt"[^>]*data-tiles="12"', dom)
    shapes = re.findall(r'class="tile-shape (\w+) leaflet-interactive"', dom)
    assert len(shapes) == 12
    assert sorted(shapes) == sorted(f["properties"]["provenance"] for f in fc["features"])
    counts = re.findall(r'class="leaflet-tooltip tile-count[^"]*"[^>]*>([\d.]+)<', dom)
    assert sorted(float(c) for c in counts) == pytest.approx(
        sorted(f["properties"]["total"] for f in fc["features"]), abs=0.06)


def _dashboard_dom(g_port: int, key: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
         "--dump-dom", f"http://127.0.0.1:{g_port}/#key={key}"],
        capture_output=True, text=True, timeout=120).stdout

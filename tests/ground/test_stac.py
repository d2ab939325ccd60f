"""A scene's counts as a STAC Item (Label extension) and a GeoJSON of tiles: valid for pystac,
readable by standard GeoJSON readers, on the map where the footprint says, adding up to the
scene's totals; served by the ground and written for offline use."""

import json

import geojson
import pystac
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import shape

from ground.stac import stac_item, tiles_geojson, write
from ground.store import SQLiteStore
from shared.stac_check import check, validator
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks

# 512 x 384 px at 0.5 m in UTM 32N: 2 x 2 tiles of 256 px, the last row partial.
GT = (500000.0, 0.5, 0.0, 5540000.0, 0.0, -0.5)


def counted_scene(store, scene_id="c", footprint=True, crs="EPSG:32632"):
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=512, height=384, tile_size=256, rows=2, cols=2), gsd_m=0.5,
        capture_time="2024-05-01T10:00:00+00:00", classes=["ship", "vehicle"],
        onboard_model="m/shallow@abc", ground_model="m/deep", policy="value")
    if footprint:
        h.footprint.CopyFrom(link_pb2.Footprint(geotransform=list(GT), crs=crs))
    store.put_header(h)
    decisions = [link_pb2.ACCEPTED, link_pb2.DOWNLINKED, link_pb2.ACCEPTED,
                 link_pb2.DISCARDED]
    splits = [[1.0, 2.0], [0.5, 0.5], [0.0, 3.0], [2.0, 0.0]]
    store.put_summary(link_pb2.SceneSummary(scene_id=scene_id, tiles=[
        link_pb2.TileDecision(index=i, decision=d, onboard_count=sum(v), class_counts=v,
                              confidence=0.9)
        for i, (d, v) in enumerate(zip(decisions, splits, strict=True))]))
    chunk = tile_chunks(scene_id, 1, 0, 1, b"jpeg", 75)[0]
    store.commit_tile(chunk, b"jpeg")
    store.set_counts([(scene_id, 1, 5.0, [4.0, 1.0])])


def test_the_item_is_valid_stac_with_the_label_extension_and_the_counts(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    counted_scene(store)
    d = stac_item(store, "c")
    assert check(d) == []  # core schema and the projection and label fields, offline
    item = pystac.Item.from_dict(d)
    # pystac's own validation of the core schema it ships (offline), and its Label
    # extension reads the label fields back
    validator().validate_core(d, pystac.STACObjectType.ITEM, "1.1.0")
    props = item.properties
    assert props["label:type"] == "vector"
    assert props["label:tasks"] == ["counting", "regression"]
    assert props["label:properties"] == ["ship", "vehicle"]
    totals = {o["property_key"]: {s["name"]: s["value"] for s in o["statistics"]}
              for o in props["label:overviews"]}
    assert totals == {"ship": {"total": 7.0, "onboard_total": 3.5},
                      "vehicle": {"total": 6.0, "onboard_total": 5.5}}
    assert item.datetime.isoformat() == "2024-05-01T10:00:00+00:00"
    assert props["gsd"] == 0.5 and props["proj:code"] == "EPSG:32632"
    assert props["proj:shape"] == [384, 512]
    assert item.assets["labels"].href == "tiles.geojson"
    assert item.assets["labels"].media_type == "application/geo+json"
    # The footprint, in WGS84, is where UTM 32N puts the scene's corners.
    to_wgs = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    lon0, lat0 = to_wgs.transform(500000.0, 5540000.0 - 192.0)
    lon1, lat1 = to_wgs.transform(500256.0, 5540000.0)
    assert item.bbox == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-7)


def test_the_geojson_opens_in_standard_readers_and_adds_up_to_the_totals(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    counted_scene(store)
    text = json.dumps(tiles_geojson(store, "c"))
    fc = geojson.loads(text)
    assert fc.is_valid and len(fc["features"]) == 4
    by_index = {f["properties"]["index"]: f["properties"] for f in fc["features"]}
    assert [by_index[i]["decision"] for i in range(4)] == \
        ["accepted", "downlinked", "accepted", "discarded"]
    assert by_index[1]["provenance"] == "downlinked" and by_index[1]["ground_counted"]
    assert (by_index[1]["ship"], by_index[1]["vehicle"]) == (4.0, 1.0)  # the ground's
    assert (by_index[1]["onboard:ship"], by_index[1]["onboard:vehicle"]) == (0.5, 0.5)
    assert by_index[0]["confidence"] == 0.9
    assert sum(p["ship"] for p in by_index.values()) == pytest.approx(7.0)
    assert sum(p["total"] for p in by_index.values()) == pytest.approx(13.0)
    # Tile 3 (row 1, col 1) is 256 x 128 px: 128 m x 64 m, south-east of the scene's corner.
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    tile3 = next(f for f in fc["features"] if f["properties"]["index"] == 3)
    x0, y0, x1, y1 = shape(tile3["geometry"]).bounds
    (ux0, ux1), (uy0, uy1) = to_utm.transform([x0, x1], [y0, y1])
    assert (ux0, uy0, ux1, uy1) == pytest.approx(
        (500128.0, 5539808.0, 500256.0, 5539872.0), abs=0.5)
    assert tile3["properties"]["pixel_bbox"] == [256, 256, 512, 384]


def test_in_the_scenes_crs_and_without_a_footprint(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    counted_scene(store)
    counted_scene(store, "nofp", footprint=False)
    counted_scene(store, "local", crs="local")
    scene = tiles_geojson(store, "c", crs="scene")
    assert scene["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32632"
    assert shape(scene["features"][0]["geometry"]).bounds == \
        (500000.0, 5539872.0, 500128.0, 5540000.0)
    for sid in ("nofp", "local"):  # nowhere on the map: null geometries, still valid
        fc = geojson.loads(json.dumps(tiles_geojson(store, sid)))
        assert fc.is_valid and all(f["geometry"] is None for f in fc["features"])
        d = stac_item(store, sid)
        assert d["geometry"] is None and "bbox" not in d
        check(d)
    assert tiles_geojson(store, "never") is None and stac_item(store, "never") is None


def test_written_for_offline_use_with_a_relative_labels_href(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    counted_scene(store)
    item_path, labels = write(store, "c", tmp_path / "stac")
    item = pystac.Item.from_file(str(item_path))
    assert item.assets["labels"].get_absolute_href() == str(labels)
    assert geojson.loads(labels.read_text()).is_valid


def test_the_ground_serves_both_and_documents_their_errors(tmp_path):
    from ground.app import create_app
    from ground.settings import GroundSettings

    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="aircraft", auth=False)
    with TestClient(create_app(settings)) as client:
        counted_scene(SQLiteStore(tmp_path / "g.db"))
        r = client.get("/v1/scenes/c/stac")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        d = r.json()
        check(d)
        labels = d["assets"]["labels"]["href"]
        assert labels == "http://testserver/v1/scenes/c/tiles.geojson"
        fc = client.get(labels)
        assert fc.status_code == 200 and geojson.loads(fc.text).is_valid
        assert client.get("/v1/scenes/never/stac").status_code == 404
        assert client.get("/v1/scenes/never/tiles.geojson").status_code == 404
        assert client.get("/v1/scenes/c/tiles.geojson?crs=mercator").status_code == 422
        paths = client.get("/openapi.json").json()["paths"]
        assert set(paths["/v1/scenes/{scene_id}/stac"]["get"]["responses"]) >= \
            {"200", "401", "404"}
        assert set(paths["/v1/scenes/{scene_id}/tiles.geojson"]["get"]["responses"]) >= \
            {"200", "401", "404", "422"}


def test_the_command_writes_every_scene_of_a_store(tmp_path, capsys):
    from targetfuse.cli import main

    store = SQLiteStore(tmp_path / "g.db")
    counted_scene(store)
    counted_scene(store, "nofp", footprint=False)
    store.close()
    assert main(["stac", "--db", str(tmp_path / "g.db"), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == \
        ["c.json", "c.tiles.geojson", "nofp.json", "nofp.tiles.geojson"]
    check(json.loads((tmp_path / "o" / "c.json").read_text()))
    assert main(["stac", "--db", str(tmp_path / "g.db"), "--out", str(tmp_path / "o"),
                 "--scene", "never"]) == 2
    assert "no scene never" in capsys.readouterr().err

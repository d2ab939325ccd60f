"""A STAC Item as a scene's metadata: read into gsd, footprint, CRS and capture time; a
malformed one is a 422 naming the field, and changes nothing."""

import io
import json
from datetime import UTC, datetime

import numpy as np
import pystac
import pytest
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension

from onboard.intake import IntakeError, accept, parse_metadata
from shared.imageio import encode


def item_dict(stac_version: str | None = None, **props) -> dict:
    """An Item made by pystac itself (projection and eo extensions), as a user's tool would."""
    ring = [[10.0, 50.0], [10.01, 50.0], [10.01, 50.01], [10.0, 50.01], [10.0, 50.0]]
    item = pystac.Item("scene-7", {"type": "Polygon", "coordinates": [ring]},
                       [10.0, 50.0, 10.01, 50.01], datetime(2024, 5, 1, 10, tzinfo=UTC),
                       {"platform": "pleiades-1a", "instruments": ["hires"], **props})
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = "EPSG:32632"
    proj.transform = [0.5, 0.0, 500000.0, 0.0, -0.5, 5540000.0]
    EOExtension.ext(item, add_if_missing=True).cloud_cover = 3.0
    d = item.to_dict(include_self_link=False)
    if stac_version:
        d["stac_version"] = stac_version
    return d


def test_an_item_gives_the_scene_its_id_time_footprint_crs_and_gsd():
    meta = parse_metadata(json.dumps(item_dict(gsd=0.5)))
    assert meta.scene_id == "scene-7" and meta.stac_id == "scene-7"
    assert meta.capture_time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert meta.gsd_m == 0.5 and meta.crs == "EPSG:32632"
    assert meta.geotransform == [500000.0, 0.5, 0.0, 5540000.0, 0.0, -0.5]  # GDAL order
    assert meta.platform == "pleiades-1a" and meta.instruments == ["hires"]
    assert meta.stac_unvalidated_extensions == []


def test_without_gsd_a_projected_transform_gives_the_pixel_size_and_proj_epsg_is_read():
    d = item_dict()
    d["stac_extensions"] = [e.replace("v2.0.0", "v1.1.0") for e in d["stac_extensions"]]
    d["properties"]["proj:epsg"] = int(d["properties"].pop("proj:code").split(":")[1])
    d["stac_version"] = "1.0.0"
    meta = parse_metadata(json.dumps(d))
    assert meta.gsd_m == 0.5 and meta.crs == "EPSG:32632"


def test_an_extension_without_a_local_schema_is_noted_not_refused():
    d = item_dict()
    d["stac_extensions"].append("https://stac-extensions.github.io/view/v1.0.0/schema.json")
    meta = parse_metadata(json.dumps(d))
    assert meta.stac_unvalidated_extensions == [d["stac_extensions"][-1]]


def _set(path, value):
    def mutate(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return mutate


@pytest.mark.parametrize("mutate,field", [
    (_set("properties.datetime", KeyError), "properties"),
    (_set("properties.datetime", "yesterday"), "properties.datetime"),
    (_set("properties.gsd", -1), "properties.gsd"),
    (_set("properties.proj:transform", [1, 2]), "properties.proj:transform"),
    (_set("properties.proj:transform", [1, 0, 0, 0, 0, 0]), "properties.proj:transform"),
    (_set("properties.proj:code", "EPSG:99999999"), "properties.proj:code"),
    (_set("properties.eo:cloud_cover", "cloudy"), "properties.eo:cloud_cover"),
    (_set("geometry", {"type": "Polygon", "coordinates": 5}), "geometry.coordinates"),
    (_set("bbox", "x"), "bbox"),
    (_set("id", "a/b"), "id"),
    (_set("links", KeyError), "item"),
    (_set("stac_version", "0.9.0"), "stac_version"),
    (_set("properties.targetfuse:classes", []), "properties.targetfuse:classes"),
])
def test_a_malformed_item_is_a_422_that_names_the_field(mutate, field):
    d = item_dict(gsd=0.5)
    mutate(d)
    with pytest.raises(IntakeError) as exc:
        parse_metadata(json.dumps(d))
    assert exc.value.status == 422
    assert exc.value.message.startswith(f"STAC Item: {field}: "), exc.value.message


def test_the_home_made_metadata_still_works():
    meta = parse_metadata(json.dumps({"scene_id": "s1", "gsd_m": 0.5}))
    assert meta.scene_id == "s1" and meta.gsd_m == 0.5 and meta.crs == "local"


def _intake(tmp_path):
    from onboard.link.outbox import Outbox
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    settings = OnboardSettings(auth=False, data_dir=tmp_path / "onboard")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings, ScenesDB(Outbox(settings.data_dir / "outbox.db"))


def test_an_item_with_only_a_bbox_places_a_png_north_up_over_it(tmp_path):
    settings, db = _intake(tmp_path)
    d = item_dict(gsd=0.5)
    d["stac_extensions"] = [e for e in d["stac_extensions"] if "projection" not in e]
    for k in ("proj:code", "proj:transform"):
        del d["properties"][k]
    png = encode(np.zeros((40, 80, 3), np.uint8), ".png")
    assert accept(settings, db, io.BytesIO(png), json.dumps(d)) == "scene-7"
    meta = db.get("scene-7")["metadata"]
    assert meta["crs"] == "EPSG:4326" and meta["platform"] == "pleiades-1a"
    assert meta["geotransform"] == pytest.approx([10.0, 0.01 / 80, 0.0, 50.01, 0.0,
                                                  -0.01 / 40])


def test_an_item_whose_proj_shape_is_not_the_images_is_refused_and_nothing_is_kept(tmp_path):
    settings, db = _intake(tmp_path)
    d = item_dict(gsd=0.5)
    d["properties"]["proj:shape"] = [100, 100]
    png = encode(np.zeros((40, 80, 3), np.uint8), ".png")
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(png), json.dumps(d))
    assert exc.value.status == 422 and "proj:shape" in exc.value.message
    assert "40x80" in exc.value.message
    assert not db.exists("scene-7")
    assert not list((settings.data_dir / "incoming").iterdir())
    assert not list((settings.data_dir / "scenes").glob("*/*"))


"""Every number a caller gives the onboard intake meets one rule (``shared.limits``), at the
door: a clear 422, nothing stored (issue 26, finding 2). A GSD read from a file's own
header that no sensor has is a warning, and the scene is counted at an estimate instead."""

import io
import json

import numpy as np
import pytest

from onboard.intake import IntakeError, accept, parse_metadata
from shared.imageio import encode

from .test_stac_intake import item_dict


@pytest.mark.parametrize("meta", [
    {"gsd_m": 1e-9}, {"gsd_m": 2.68e-06}, {"gsd_m": 1000}, {"gsd_m": 0},
    {"geotransform": [1e300, 0.5, 0, 0, 0, -0.5]},
    {"geotransform": [0, 0.5, 0, 0, 0, -0.5], "crs": "EPSG:999999"},
    {"geotransform": [0, 0.5, 0, 0, 0, -0.5], "crs": "EPSG:0"},
])
def test_numbers_no_scene_has_are_a_clear_422(meta):
    with pytest.raises(IntakeError) as exc:
        parse_metadata(json.dumps(meta))
    assert exc.value.status == 422, exc.value.message
    assert any(k in exc.value.message for k in ("gsd_m", "geotransform", "crs"))


@pytest.mark.parametrize("text", ['{"gsd_m": NaN}', '{"gsd_m": Infinity}',
                                  '{"geotransform": [0, 0.5, 0, 0, 0, -Infinity]}'])
def test_json_constants_that_are_not_numbers_are_refused(text):
    with pytest.raises(IntakeError) as exc:
        parse_metadata(text)
    assert exc.value.status == 422 and "not a number" in exc.value.message


def test_a_stac_item_with_a_nan_bbox_is_refused_before_its_202(tmp_path):
    from onboard.link.outbox import Outbox
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    item = item_dict(gsd=0.5)
    del item["properties"]["proj:transform"]
    text = json.dumps(item).replace(json.dumps(item["bbox"]), "[NaN, NaN, NaN, NaN]")
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "onboard")
    settings.data_dir.mkdir(parents=True)
    db = ScenesDB(Outbox(settings.data_dir / "outbox.db"))
    png = encode(np.zeros((64, 64, 3), np.uint8), ".png")
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(png), text)
    assert exc.value.status == 422
    assert not db.exists("scene-7")
    bad = item_dict(gsd=0.5)
    bad["bbox"] = [10.0, 95.0, 10.01, 96.0]  # latitudes beyond the pole
    with pytest.raises(IntakeError) as exc:
        parse_metadata(json.dumps(bad))
    assert exc.value.status == 422 and "bbox" in exc.value.message


def test_a_gsd_too_fine_for_a_tile_to_fit_memory_is_refused_at_the_door(tmp_path):
    from onboard.scene_job import SceneRefused, TileRule

    with pytest.raises(SceneRefused, match="a tile would be 12800 px"):
        TileRule(256, 0.5, max_tile_side=4096).check(30000, 30000, 0.01)


def test_a_file_header_gsd_no_sensor_has_is_a_warning_and_an_estimate(tmp_path):
    """A GeoTIFF whose own georeference says 2.68e-06 m/px: counted, with a warning, at the
    image's estimated GSD (not failed, not counted at the nonsense)."""
    import rasterio
    from rasterio.transform import Affine

    from onboard.counter import OnboardCounter
    from onboard.link.outbox import Outbox
    from onboard.processing import SceneProcessor
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    path = tmp_path / "odd.tif"
    pixels = np.random.default_rng(0).integers(0, 256, (3, 256, 256), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=3,
                       dtype="uint8", crs="EPSG:32631",
                       transform=Affine(2.68e-06, 0, 500000, 0, -2.68e-06, 4e6)) as dst:
        dst.write(pixels)
    # The default pair's counter keeps its training features' statistics: it can estimate.
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "onboard", model="objects",
                               budget_fraction=0.3)
    settings.data_dir.mkdir(parents=True)
    db = ScenesDB(Outbox(settings.data_dir / "outbox.db"))
    counter = OnboardCounter.shipped("objects", settings.models_dir, threads=1)
    result = SceneProcessor(settings, db, counter).process("odd", str(path), {})
    assert result["gsd_source"] == "estimated" and 0.01 <= result["gsd_m"] <= 100
    assert any("the file's GSD" in w and "estimated" in w for w in result["warnings"])

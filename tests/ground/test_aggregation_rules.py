"""How a scene's total treats the tiles nobody counted is a ground setting: the pipeline's
rules by default, another when told (the report, the GeoJSON and the STAC Item alike), and a
value that is no rule is refused at start, naming the setting and the choices."""

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from ground.scenes import scene_report
from ground.settings import GroundSettings
from ground.stac import stac_item, tiles_geojson
from ground.store import SQLiteStore
from shared.pipeline.aggregation import (
    DISCARD_TREATMENTS,
    UNCOUNTED_TREATMENTS,
    AggregationRules,
)
from shared.pipeline.config import PipelineConfig
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


def mixed_scene(store: SQLiteStore, scene_id: str = "m") -> None:
    """Four tiles, one of each fate: accepted (4, context 0), downlinked (ground 6,
    context 0), discarded (onboard 2, context 1), uncounted (context 0)."""
    store.put_header(link_pb2.SceneHeader(scene_id=scene_id, gsd_m=0.5, grid=link_pb2.TileGrid(
        width=512, height=512, tile_size=256, rows=2, cols=2)))
    tiles = [link_pb2.TileDecision(index=0, decision=link_pb2.ACCEPTED, onboard_count=4.0,
                                   context=0),
             link_pb2.TileDecision(index=1, decision=link_pb2.DOWNLINKED, onboard_count=3.0,
                                   context=0),
             link_pb2.TileDecision(index=2, decision=link_pb2.DISCARDED, onboard_count=2.0,
                                   context=1),
             link_pb2.TileDecision(index=3, decision=link_pb2.UNCOUNTED, context=0)]
    store.put_summary(link_pb2.SceneSummary(scene_id=scene_id, tiles=tiles))
    store.commit_tile(tile_chunks(scene_id, 1, 0, 1, b"jpeg", 75)[0], b"jpeg")
    store.set_counts([(scene_id, 1, 6.0, [6.0])])


# accepted 4 + ground 6 + the discarded tile's 2 (or 0) + the uncounted tile's context mean,
# (4 + 6) / 2 (or 0)
TOTALS = {("onboard", "context"): 17.0, ("zero", "context"): 15.0,
          ("onboard", "zero"): 12.0, ("zero", "zero"): 10.0}


@pytest.mark.parametrize("discarded,uncounted", list(TOTALS))
def test_each_rule_changes_the_total_as_it_says(tmp_path, discarded, uncounted):
    store = SQLiteStore(tmp_path / "g.db")
    mixed_scene(store)
    rules = GroundSettings(db_path=tmp_path / "g.db", discarded_tiles=discarded,
                           uncounted_tiles=uncounted).aggregation()
    r = scene_report(store, "m", rules=rules)
    assert r["total"] == pytest.approx(TOTALS[discarded, uncounted])
    assert r["by_provenance"]["discarded"] == (2.0 if discarded == "onboard" else 0.0)
    assert r["by_provenance"]["uncounted"] == (5.0 if uncounted == "context" else 0.0)
    # the GeoJSON's tiles and the STAC Item's overview say the same total
    fc = tiles_geojson(store, "m", rules=rules)
    assert sum(f["properties"]["total"] for f in fc["features"]) == pytest.approx(r["total"])
    assert sum(f["properties"]["objects"] for f in fc["features"]) == pytest.approx(r["total"])
    item = stac_item(store, "m", rules=rules)
    assert item["properties"]["targetfuse:total"] == pytest.approx(r["total"])


def test_the_default_is_the_pipeline_s_and_what_the_ground_did_before(tmp_path):
    settings = GroundSettings(db_path=tmp_path / "g.db")
    assert settings.aggregation() == AggregationRules()
    cfg = PipelineConfig()
    assert settings.aggregation() == AggregationRules(cfg.discarded, cfg.uncounted)
    store = SQLiteStore(tmp_path / "g.db")
    mixed_scene(store)
    assert scene_report(store, "m")["total"] == pytest.approx(17.0)


def test_an_experiment_s_choice_deploys_on_the_ground_from_the_environment(tmp_path,
                                                                           monkeypatch):
    chosen = PipelineConfig(uncounted="zero")  # as 3 of the 6 experiment runs chose
    monkeypatch.setenv("TARGETFUSE_GROUND_UNCOUNTED_TILES", chosen.uncounted)
    monkeypatch.setenv("TARGETFUSE_GROUND_DISCARDED_TILES", chosen.discarded)
    assert GroundSettings(db_path=tmp_path / "g.db").aggregation() == \
        AggregationRules("onboard", "zero")


@pytest.mark.parametrize("field,value,choices", [
    ("uncounted_tiles", "mean", "'zero' or 'context'"),
    ("discarded_tiles", "drop", "'onboard' or 'zero'"),
    ("uncounted_tiles", "", "'zero' or 'context'")])
def test_a_value_that_is_no_rule_is_refused_naming_the_setting_and_the_choices(
        tmp_path, field, value, choices):
    with pytest.raises(ValidationError) as exc:
        GroundSettings(db_path=tmp_path / "g.db", **{field: value})
    message = str(exc.value)
    assert field in message and choices in message and repr(value) in message


def test_a_bad_value_in_the_environment_is_refused_too(tmp_path, monkeypatch):
    monkeypatch.setenv("TARGETFUSE_GROUND_UNCOUNTED_TILES", "Context")
    with pytest.raises(ValidationError, match="uncounted_tiles"):
        GroundSettings(db_path=tmp_path / "g.db")


def test_rules_built_directly_check_their_values():
    with pytest.raises(ValueError, match="uncounted-tile treatment must be one of"):
        AggregationRules("onboard", "mean")  # type: ignore[arg-type]


def test_the_offline_command_offers_the_same_choices():
    import argparse

    from ground.stac_cli import add_parser

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    stac = sub.choices["stac"]
    options = {a.dest: a for a in stac._actions}
    assert tuple(options["discarded"].choices) == DISCARD_TREATMENTS
    assert tuple(options["uncounted"].choices) == UNCOUNTED_TREATMENTS
    assert (options["discarded"].default, options["uncounted"].default) == \
        (AggregationRules().discarded, AggregationRules().uncounted)


def test_the_service_reports_by_its_setting(tmp_path):
    from ground.app import create_app

    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="aircraft", auth=False, uncounted_tiles="zero",
                              discarded_tiles="zero")
    with TestClient(create_app(settings)) as client:
        mixed_scene(SQLiteStore(tmp_path / "g.db"))
        assert client.get("/v1/scenes/m").json()["total"] == pytest.approx(10.0)
        assert client.get("/v1/scenes").json()["scenes"][0]["total"] == pytest.approx(10.0)
        fc = client.get("/v1/scenes/m/tiles.geojson").json()
        assert sum(f["properties"]["total"] for f in fc["features"]) == pytest.approx(10.0)
        item = client.get("/v1/scenes/m/stac").json()
        assert item["properties"]["targetfuse:total"] == pytest.approx(10.0)


def test_the_offline_command_writes_totals_by_the_rules_it_is_given(tmp_path):
    import json

    from targetfuse.cli import main

    store = SQLiteStore(tmp_path / "g.db")
    mixed_scene(store)
    store.close()
    for flags, total in (([], 17.0), (["--discarded", "zero", "--uncounted", "zero"], 10.0)):
        out = tmp_path / "o"
        assert main(["stac", "--db", str(tmp_path / "g.db"), "--out", str(out), *flags]) == 0
        item = json.loads((out / "m.json").read_text())
        assert item["properties"]["targetfuse:total"] == pytest.approx(total)

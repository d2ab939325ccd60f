"""The ground's scene answer says when the satellite knew no ground sample distance."""

from ground.scenes import scene_report
from ground.store import SQLiteStore
from shared.wire import link_pb2


def header(scene_id: str, gsd_m: float | None) -> link_pb2.SceneHeader:
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=512, height=512, tile_size=256, rows=2, cols=2))
    if gsd_m:
        h.gsd_m = gsd_m
    return h


def test_an_unknown_gsd_is_a_warning_in_the_scene_answer(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    store.put_header(header("known", 0.5))
    store.put_header(header("unknown", None))
    known, unknown = scene_report(store, "known"), scene_report(store, "unknown")
    assert known["gsd_m"] == 0.5 and known["warnings"] == []
    assert unknown["gsd_m"] is None
    assert "ground sample distance unknown" in unknown["warnings"][0]
    assert unknown["total"] is None and unknown["complete"] is False  # no summary yet
    assert scene_report(store, "never") is None

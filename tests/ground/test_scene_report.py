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


def test_per_class_totals_and_a_class_filter(tmp_path):
    import pytest

    from shared.wire.chunks import tile_chunks

    store = SQLiteStore(tmp_path / "g.db")
    h = header("c", 0.5)
    h.classes.extend(["ship", "vehicle"])
    store.put_header(h)
    decisions = [link_pb2.ACCEPTED, link_pb2.DOWNLINKED, link_pb2.ACCEPTED, link_pb2.DISCARDED]
    splits = [[1.0, 2.0], [0.5, 0.5], [0.0, 3.0], [2.0, 0.0]]
    store.put_summary(link_pb2.SceneSummary(scene_id="c", tiles=[
        link_pb2.TileDecision(index=i, decision=d, onboard_count=sum(v), class_counts=v)
        for i, (d, v) in enumerate(zip(decisions, splits, strict=True))]))
    chunk = tile_chunks("c", 1, 0, 1, b"jpeg", 75)[0]
    store.commit_tile(chunk, b"jpeg")
    store.set_counts([("c", 1, 5.0, [4.0, 1.0])])
    r = scene_report(store, "c")
    assert r["complete"] and r["classes"] == ["ship", "vehicle"]
    assert r["by_class"]["ship"]["total"] == pytest.approx(1 + 4 + 0 + 2)
    assert r["by_class"]["vehicle"]["total"] == pytest.approx(2 + 1 + 3 + 0)
    assert r["total"] == pytest.approx(13.0)
    ships = scene_report(store, "c", classes=["ship"])
    assert ships["total"] == pytest.approx(7.0) and list(ships["by_class"]) == ["ship"]
    assert ships["onboard_total"] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="counted for ship, vehicle; not aircraft"):
        scene_report(store, "c", classes=["aircraft"])


def test_an_estimated_gsd_is_said_as_such(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    h = header("est", 0.125)
    h.gsd_estimated = True
    store.put_header(h)
    r = scene_report(store, "est")
    assert r["gsd_m"] == 0.125 and r["gsd_estimated"] is True
    assert "estimated 0.125 m/px" in r["warnings"][0]

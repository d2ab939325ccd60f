"""Exploration tiles on the ground: received over the link with their flag, kept with the
satellite's onboard count and confidence beside the ground's count (SQLite and PostgreSQL),
aggregated like any downlinked tile, and a store written before them gains the columns."""

from __future__ import annotations

import sqlite3

import pytest

from ground.link_server import receive
from ground.scenes import scene_report
from ground.store import PostgresStore, SQLiteStore
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "g.db")
    else:
        s = PostgresStore(request.getfixturevalue("postgres_url"))
    yield s
    s.close()


def scene(scene_id: str, jpeg_tile) -> list[link_pb2.DownlinkMessage]:
    """Four tiles: 0 accepted, 1 downlinked by value, 2 explored, 3 accepted."""
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=512, height=512, tile_size=256, rows=2, cols=2))
    decisions = [link_pb2.ACCEPTED, link_pb2.DOWNLINKED, link_pb2.DOWNLINKED,
                 link_pb2.ACCEPTED]
    s = link_pb2.SceneSummary(scene_id=scene_id, tiles=[
        link_pb2.TileDecision(index=i, decision=d, onboard_count=float(i + 1),
                              confidence=0.5 + i / 10, quality=90 if i in (1, 2) else 0,
                              exploration=i == 2)
        for i, d in enumerate(decisions)])
    out = [link_pb2.DownlinkMessage(header=h), link_pb2.DownlinkMessage(summary=s)]
    for i in (1, 2):
        out += [link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
            scene_id, i, i // 2, i % 2, jpeg_tile(3000, seed=i), 90, chunk_bytes=1000,
            onboard_count=float(i + 1), confidence=0.5 + i / 10, exploration=i == 2)]
    return out


def test_an_exploration_tile_is_kept_with_both_counts_and_aggregated(store, jpeg_tile):
    for m in scene("s", jpeg_tile):
        assert receive(store, m, "sat-1").status != link_pb2.Ack.REJECTED
    assert store.explored_tiles() == []  # not counted yet
    [waiting] = store.explored_tiles(counted=False)
    assert (waiting.scene_id, waiting.tile_index, waiting.ground_count) == ("sat-1:s", 2, None)
    store.set_counts([("sat-1:s", 1, 7.0), ("sat-1:s", 2, 9.0)])
    [t] = store.explored_tiles()
    assert (t.sender, t.tile_index, t.quality) == ("sat-1", 2, 90)
    assert t.onboard_count == pytest.approx(3.0) and t.confidence == pytest.approx(0.7)
    assert t.ground_count == pytest.approx(9.0)
    assert store.explored_tiles(sender="sat-1") == [t]
    assert store.explored_tiles(sender="sat-2") == []
    r = scene_report(store, "sat-1:s")
    # The ground's count replaces the onboard one, as for the tile sent by value.
    assert r["total"] == pytest.approx(1 + 7 + 9 + 4)
    assert r["tiles_explored"] == 1
    assert [p["exploration"] for p in r["per_tile"]] == [False, False, True, False]
    assert r["per_tile"][2]["provenance"] == "downlinked"
    # What an adaptation fits on (both backends): every counted tile with its bytes.
    counted = store.counted_tiles("sat-1", 10)
    assert sorted((c.tile_index, c.exploration) for c in counted) == [(1, False), (2, True)]
    assert {c.tile_index: c.ground_count for c in counted} == {1: 7.0, 2: 9.0}
    assert all(len(c.data) == 3000 and c.onboard_count is not None for c in counted)
    assert len(store.counted_tiles("sat-1", 1)) == 1 and store.counted_tiles("sat-2", 10) == []


def test_a_store_written_before_exploration_gains_its_columns(tmp_path, jpeg_tile):
    SQLiteStore(tmp_path / "g.db").close()
    with sqlite3.connect(tmp_path / "g.db") as db:  # as an older ground wrote it
        db.execute("DROP INDEX tiles_explored")
        for column in ("exploration", "confidence", "onboard_count"):
            db.execute(f"ALTER TABLE tiles DROP COLUMN {column}")
    store = SQLiteStore(tmp_path / "g.db")
    for m in scene("s", jpeg_tile):
        receive(store, m)
    store.set_counts([("s", 2, 1.0)])
    assert [t.tile_index for t in store.explored_tiles()] == [2]
    store.close()

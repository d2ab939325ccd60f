"""The ground store behaves the same on SQLite (embedded) and PostgreSQL (the ground
segment's shared database): idempotent parts, ownership, resume, counting, the link log; and
two stores on one PostgreSQL database see each other's commits (two stations)."""

from __future__ import annotations

import threading

import pytest

from ground.link_server import receive
from ground.store import PostgresStore, SQLiteStore
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request, tmp_path):
    made = []

    def make():
        if request.param == "sqlite":
            store = SQLiteStore(tmp_path / "g.db")
        else:
            url = request.getfixturevalue("postgres_url")
            store = PostgresStore(url)
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


def scene(scene_id: str, tiles: dict[int, bytes]) -> list[link_pb2.DownlinkMessage]:
    h = link_pb2.SceneHeader(scene_id=scene_id, classes=["aircraft"], grid=link_pb2.TileGrid(
        width=512, height=512, tile_size=256, rows=2, cols=2))
    s = link_pb2.SceneSummary(scene_id=scene_id, tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.DOWNLINKED if i in tiles
                              else link_pb2.ACCEPTED, onboard_count=1.0) for i in range(4)])
    out = [link_pb2.DownlinkMessage(header=h), link_pb2.DownlinkMessage(summary=s)]
    for i, data in tiles.items():
        out += [link_pb2.DownlinkMessage(chunk=c) for c in
                tile_chunks(scene_id, i, i // 2, i % 2, data, 90, chunk_bytes=1500)]
    return out


def test_parts_commit_once_and_resume_says_what_is_held(make_store, jpeg_tile):
    store = make_store()
    tiles = {0: jpeg_tile(4000, seed=1), 3: jpeg_tile(2000, seed=2)}
    msgs = scene("s", tiles)
    acks = [receive(store, m, "sat-1") for m in msgs + msgs]  # every part sent twice
    assert all(a.status != link_pb2.Ack.REJECTED for a in acks), [a.error for a in acks]
    held = store.committed("sat-1:s")
    assert held.header and held.summary and list(held.tiles) == [0, 3]
    got = {t.tile_index: t.data for t in store.uncounted(10)}
    assert got == tiles and store.count_uncounted() == 2
    assert store.chunks("sat-1:s", 0) == {}  # partial chunks gone once the tile is whole
    assert store.owner("sat-1:s") == "sat-1" and store.scene_ids() == ["sat-1:s"]
    assert store.resolve("s") == ["sat-1:s"]
    store.set_counts([("sat-1:s", 0, 2.5, [2.5]), ("sat-1:s", 3, 1.0, [1.0])])
    assert store.count_uncounted() == 0
    assert store.ground_counts("sat-1:s") == {0: (2.5, 90), 3: (1.0, 90)}
    assert store.ground_class_counts("sat-1:s") == {0: [2.5], 3: [1.0]}
    assert store.summary("sat-1:s").tiles[3].decision == link_pb2.DOWNLINKED
    assert store.header("sat-1:s").classes == ["aircraft"] and store.header("x") is None
    # each tile's bytes logged once, though every part came twice
    assert store.bytes_received() == 6000
    assert sorted(b for _, b in store.link_log(0)) == [2000, 4000]
    assert store.received_at("sat-1:s") is not None


def test_a_partial_tile_survives_a_new_connection(make_store, jpeg_tile):
    first = make_store()
    data = jpeg_tile(5000, seed=3)
    msgs = scene("p", {1: data})
    for m in msgs[:3]:  # header, summary, the first chunk of tile 1
        receive(first, m)
    second = make_store()  # another process on the same store (a restart, or SQLite's file)
    for m in msgs[3:]:
        assert receive(second, m).status in (link_pb2.Ack.PARTIAL, link_pb2.Ack.COMMITTED)
    assert [t.data for t in second.uncounted(5)] == [data]


def test_failed_counts_are_kept_with_the_tile_across_stores(make_store, jpeg_tile):
    first = make_store()
    for m in scene("f", {0: jpeg_tile(2000, seed=4)}):
        receive(first, m, "sat-1")
    f = "sat-1:f"  # the scene's key: its id under its sender's name
    assert first.record_count_failures([(f, 0)]) == {(f, 0): 1}
    second = make_store()  # another worker on the same store
    assert second.record_count_failures([(f, 0), (f, 2)]) == {(f, 0): 2}  # 2: not held


def test_a_store_written_before_failure_counts_gains_them(tmp_path, jpeg_tile):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # the tiles table as it was, without count_failures
    old.executescript("""CREATE TABLE tiles (scene_id TEXT NOT NULL, tile_index INTEGER NOT
        NULL, quality INTEGER NOT NULL, resized INTEGER NOT NULL, sent_gsd_m REAL NOT NULL,
        data BLOB NOT NULL, sha256 BLOB NOT NULL, committed_at REAL NOT NULL,
        ground_count REAL, counted_at REAL, class_counts TEXT,
        PRIMARY KEY (scene_id, tile_index));
        INSERT INTO tiles VALUES ('o', 0, 90, 1, 0.5, x'00', x'00', 1.0, NULL, NULL, NULL);""")
    old.close()
    store = SQLiteStore(path)
    assert store.record_count_failures([("o", 0)]) == {("o", 0): 1}
    store.close()


def test_a_store_written_before_scene_keys_keys_its_scenes_by_sender(tmp_path, jpeg_tile):
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    for m in scene("old", {0: jpeg_tile(2000, seed=5)}):
        receive(store, m, "sat-1")
    store.close()
    import sqlite3

    with sqlite3.connect(path) as db:  # as an older ground kept it: under the bare id
        for table in ("tiles", "chunks", "scenes"):
            db.execute(f"UPDATE {table} SET scene_id = 'old'")
        db.execute("UPDATE scenes SET name = NULL")
    store = SQLiteStore(path)
    assert store.scene_ids() == ["sat-1:old"] and store.resolve("old") == ["sat-1:old"]
    assert list(store.committed("sat-1:old").tiles) == [0]
    store.close()


def test_two_stations_on_one_postgres_database_store_a_part_once(postgres_url, jpeg_tile):
    """The same parts arrive through two stations at once (a resend after a pass ends): the
    shared database stores and counts them once."""
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        tiles = {i: jpeg_tile(3000, seed=10 + i) for i in range(4)}
        msgs = scene("twice", tiles)
        receive(a, msgs[0], "sat-1")
        errors = []

        def station(store):
            for m in msgs[1:]:
                ack = receive(store, m, "sat-1")
                if ack.status == link_pb2.Ack.REJECTED:
                    errors.append(ack.error)

        threads = [threading.Thread(target=station, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(t.tile_index for t in a.uncounted(10)) == [0, 1, 2, 3]
        assert {t.tile_index: t.data for t in b.uncounted(10)} == tiles
        assert list(b.committed("sat-1:twice").tiles) == [0, 1, 2, 3]
        assert a.bytes_received() == sum(len(d) for d in tiles.values())  # logged once
    finally:
        a.close()
        b.close()


def test_processes_starting_at_once_create_the_schema_once(postgres_url):
    """A station and workers starting together on a new database: each creates the schema
    if missing, and none fails on the others' doing it at the same moment."""
    from concurrent.futures import ThreadPoolExecutor

    from ground.store import PostgresStore

    def open_one(_):
        store = PostgresStore(postgres_url)
        store.close()
        return True

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(open_one, range(6)))

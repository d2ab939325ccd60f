"""The ground's durable store: what arrived over the link, and what the ground counted.

``Store`` is the interface the servicer, the counting worker and the REST API use;
``SQLStore`` holds its statements once, over either database: ``SQLiteStore``, the embedded
default (``shared.sqlite_db``: one file, WAL journal, ``synchronous=FULL``, so a part
acknowledged as committed survives a crash), or ``PostgresStore``, the ground segment's
shared database (``ground.pg_db``: several stations and counting workers on one store,
chosen by ``database_url`` in the settings; ``open_store``).

A scene's key is its id qualified by its sender (``scene_key``: ``<sender>:<id>``; an
anonymous sender's scene is keyed by its id alone), so two satellites that use the same id
hold two scenes and neither can pre-empt the other; the REST API finds a scene by its key or,
when only one sender used it, by its id (``resolve``).

Every write is idempotent: a header, summary or tile sent twice (a resend after a lost
acknowledgement) is stored once, so nothing is counted twice. Chunks of a tile are kept
until the tile is complete, so a partial tile survives a restart too.

Each committed tile keeps what the satellite said of it (its chunks' onboard count and
confidence) beside the ground's count, and whether the satellite drew it for exploration
(``explored_tiles``: the unbiased evidence a recalibration is fit on, ``ground.recalibrate``);
``counted_tiles`` gives a satellite's counted tiles with their bytes (what an adaptation of
its onboard counter is fit and checked on, ``lab.closed_loop.adapt``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.sqlite_db import Database
from shared.wire import link_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenes (
    scene_id TEXT PRIMARY KEY,
    header BLOB NOT NULL,
    summary BLOB,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL DEFAULT '',  -- who created it (ground.link_auth): owns it
    name TEXT  -- the id its sender gave (scene_id is the key: sender:name)
);
CREATE TABLE IF NOT EXISTS chunks (
    scene_id TEXT NOT NULL, tile_index INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (scene_id, tile_index, "offset")
);
CREATE TABLE IF NOT EXISTS tiles (
    scene_id TEXT NOT NULL, tile_index INTEGER NOT NULL,
    quality INTEGER NOT NULL, resized INTEGER NOT NULL, sent_gsd_m REAL NOT NULL,
    data BLOB NOT NULL, sha256 BLOB NOT NULL, committed_at REAL NOT NULL,
    ground_count REAL, counted_at REAL, class_counts TEXT,
    count_failures INTEGER NOT NULL DEFAULT 0,  -- counts that failed to commit (quarantine)
    -- what the satellite said of the tile (its chunks'), beside the ground's count, and
    -- whether it was drawn for exploration (shared/pipeline/exploration.py), not by value
    onboard_count REAL, confidence REAL, exploration INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scene_id, tile_index)
);
CREATE INDEX IF NOT EXISTS tiles_uncounted ON tiles (counted_at) WHERE counted_at IS NULL;
CREATE TABLE IF NOT EXISTS link_log (
    at REAL NOT NULL, bytes INTEGER NOT NULL
);
"""


def scene_key(sender: str, scene_id: str) -> str:
    """Where a sender's scene is kept: its id under the sender's name (the anonymous
    sender's: the id itself)."""
    return f"{sender}:{scene_id}" if sender else scene_id


def scene_name(key: str) -> str:
    """The id the sender gave a scene, from its key."""
    return key.rpartition(":")[2]


# A store written before scene keys: an authenticated sender's scenes under their bare ids.
MIGRATE_KEYS = [
    "UPDATE tiles SET scene_id = (SELECT s.sender || ':' || s.scene_id FROM scenes s WHERE "
    "s.scene_id = tiles.scene_id) WHERE scene_id IN (SELECT scene_id FROM scenes WHERE "
    "sender != '' AND scene_id NOT LIKE ?)",
    "UPDATE chunks SET scene_id = (SELECT s.sender || ':' || s.scene_id FROM scenes s WHERE "
    "s.scene_id = chunks.scene_id) WHERE scene_id IN (SELECT scene_id FROM scenes WHERE "
    "sender != '' AND scene_id NOT LIKE ?)",
    "UPDATE scenes SET name = scene_id WHERE name IS NULL",
    "UPDATE scenes SET scene_id = sender || ':' || scene_id WHERE sender != '' AND "
    "scene_id NOT LIKE ?",
]


# Columns of ``tiles`` a store written before them lacks, as ALTER TABLE adds them.
TILE_COLUMNS_ADDED = {
    "class_counts": "TEXT",
    "count_failures": "INTEGER NOT NULL DEFAULT 0",  # quarantine counts
    "onboard_count": "REAL", "confidence": "REAL",  # exploration
    "exploration": "INTEGER NOT NULL DEFAULT 0",
}
# Made once the columns are there (a store written before them has none to index).
EXPLORED_INDEX = ("CREATE INDEX IF NOT EXISTS tiles_explored ON tiles (exploration) WHERE "
                  "exploration = 1")


@dataclass
class StoredTile:
    scene_id: str
    tile_index: int
    quality: int
    resized: bool
    sent_gsd_m: float
    data: bytes
    ground_count: float | None


@dataclass(frozen=True)
class ExploredTile:
    """A downlinked tile as the ground holds it: the satellite's onboard count and
    confidence beside the ground's count (None until counted), and whether it was drawn for
    exploration (else sent by value)."""

    scene_id: str  # the scene's key (sender:id)
    sender: str
    tile_index: int
    onboard_count: float | None
    confidence: float | None
    ground_count: float | None
    quality: int
    committed_at: float
    exploration: bool = True
    size: int | None = None  # bytes as received (the JPEG): what sending it cost


@dataclass(frozen=True)
class CountedTile:
    """A counted tile with its bytes, as received (JPEG), and what the satellite said of it."""

    scene_id: str
    tile_index: int
    exploration: bool
    resized: bool
    sent_gsd_m: float
    quality: int
    data: bytes
    ground_count: float
    onboard_count: float | None
    committed_at: float


class Store(Protocol):
    def put_header(self, header: link_pb2.SceneHeader, sender: str = "") -> None: ...
    def resolve(self, scene: str) -> list[str]: ...
    def check(self) -> None: ...
    def owner(self, scene_id: str) -> str | None: ...
    def put_summary(self, summary: link_pb2.SceneSummary) -> None: ...
    def put_chunk(self, chunk: link_pb2.TileChunk) -> None: ...
    def chunks(self, scene_id: str, tile_index: int) -> dict[int, bytes]: ...
    def commit_tile(self, chunk: link_pb2.TileChunk, data: bytes) -> bool: ...
    def has_scene(self, scene_id: str) -> bool: ...
    def is_committed(self, scene_id: str, tile_index: int) -> bool: ...
    def committed(self, scene_id: str) -> link_pb2.CommittedReply: ...
    def uncounted(self, limit: int) -> list[StoredTile]: ...
    def count_uncounted(self) -> int: ...
    def tiles(self, keys: list[tuple[str, int]]) -> list[StoredTile]: ...
    def uncounted_since(self, before: float, limit: int) -> list[tuple[str, int]]: ...
    def bytes_received(self) -> int: ...
    def set_counts(self, counts: list[tuple]) -> None: ...
    def record_count_failures(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]: ...
    def header(self, scene_id: str) -> link_pb2.SceneHeader | None: ...
    def summary(self, scene_id: str) -> link_pb2.SceneSummary | None: ...
    def ground_counts(self, scene_id: str) -> dict[int, tuple[float | None, int]]: ...
    def ground_class_counts(self, scene_id: str) -> dict[int, list[float]]: ...
    def scene_ids(self) -> list[str]: ...
    def bundle_versions(self) -> list[tuple[str, str, float, int]]: ...
    def explored_tiles(self, sender: str | None = None, counted: bool = True,
                       by_value: bool = False) -> list[ExploredTile]: ...
    def counted_tiles(self, sender: str, limit: int) -> list[CountedTile]: ...
    def log_bytes(self, n: int) -> None: ...
    def link_log(self, since: float) -> list[tuple[float, int]]: ...


class SQLStore:
    """The store's statements, once, over a database with ``shared.sqlite_db.Database``'s
    interface (SQLite itself, or ``ground.pg_db.PgDatabase``, which translates them)."""

    def __init__(self, db):
        self.db = db
        self._write, self._read = self.db.execute, self.db.query

    def close(self) -> None:
        self.db.close()

    def put_header(self, header: link_pb2.SceneHeader, sender: str = "") -> None:
        """Keep a sender's header under its key (``scene_key``); the first one stands."""
        self._write("INSERT OR IGNORE INTO scenes (scene_id, header, received_at, sender, "
                    "name) VALUES (?, ?, ?, ?, ?)",
                    (scene_key(sender, header.scene_id), header.SerializeToString(),
                     time.time(), sender, header.scene_id))

    def resolve(self, scene: str) -> list[str]:
        """The keys a REST caller may mean by ``scene``: the key itself when it is one,
        else every scene whose sender gave it that id (more than one: ambiguous)."""
        if self._read("SELECT 1 FROM scenes WHERE scene_id = ?", (scene,)):
            return [scene]
        return [r[0] for r in self._read("SELECT scene_id FROM scenes WHERE name = ? "
                                         "ORDER BY received_at", (scene,))]

    def received_at(self, scene_id: str) -> float | None:
        """When the scene's header first arrived (a Unix time)."""
        rows = self._read("SELECT received_at FROM scenes WHERE scene_id = ?", (scene_id,))
        return rows[0][0] if rows else None

    def owner(self, scene_id: str) -> str | None:
        rows = self._read("SELECT sender FROM scenes WHERE scene_id = ?", (scene_id,))
        return rows[0][0] if rows else None

    def put_summary(self, summary: link_pb2.SceneSummary, key: str | None = None) -> None:
        self._write("UPDATE scenes SET summary = ? WHERE scene_id = ? AND summary IS NULL",
                    (summary.SerializeToString(), key or summary.scene_id))

    def put_chunk(self, chunk: link_pb2.TileChunk, key: str | None = None) -> None:
        self._write('INSERT OR IGNORE INTO chunks (scene_id, tile_index, "offset", data) '
                    "VALUES (?, ?, ?, ?)", (key or chunk.scene_id, chunk.tile_index,
                                            chunk.offset, bytes(chunk.data)))

    def chunks(self, scene_id: str, tile_index: int) -> dict[int, bytes]:
        return dict(self._read('SELECT "offset", data FROM chunks WHERE scene_id = ? AND '
                               "tile_index = ?", (scene_id, tile_index)))

    def commit_tile(self, chunk: link_pb2.TileChunk, data: bytes, key: str | None = None
                    ) -> bool:
        """Store a complete, verified tile (of the scene keyed ``key``, default the chunk's
        scene id); False when it was committed already."""
        key = key or chunk.scene_id
        with self.db.transaction() as cur:
            new = cur.execute(
                "INSERT OR IGNORE INTO tiles (scene_id, tile_index, quality, resized, "
                "sent_gsd_m, data, sha256, committed_at, onboard_count, confidence, "
                "exploration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, chunk.tile_index, chunk.quality, int(chunk.resized),
                 chunk.sent_gsd_m, data, chunk.sha256, time.time(),
                 chunk.onboard_count if chunk.HasField("onboard_count") else None,
                 chunk.confidence if chunk.HasField("confidence") else None,
                 int(chunk.exploration))).rowcount
            cur.execute("DELETE FROM chunks WHERE scene_id = ? AND tile_index = ?",
                        (key, chunk.tile_index))
        return bool(new)

    def has_scene(self, scene_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM scenes WHERE scene_id = ?", (scene_id,)))

    def is_committed(self, scene_id: str, tile_index: int) -> bool:
        return bool(self._read("SELECT 1 FROM tiles WHERE scene_id = ? AND tile_index = ?",
                               (scene_id, tile_index)))

    def committed(self, scene_id: str) -> link_pb2.CommittedReply:
        row = self._read("SELECT summary IS NOT NULL FROM scenes WHERE scene_id = ?",
                         (scene_id,))
        tiles = [r[0] for r in self._read("SELECT tile_index FROM tiles WHERE scene_id = ? "
                                          "ORDER BY tile_index", (scene_id,))]
        return link_pb2.CommittedReply(scene_id=scene_id, header=bool(row),
                                       summary=bool(row and row[0][0]), tiles=tiles)

    def uncounted(self, limit: int) -> list[StoredTile]:
        rows = self._read("SELECT scene_id, tile_index, quality, resized, sent_gsd_m, data "
                          "FROM tiles WHERE counted_at IS NULL ORDER BY committed_at "
                          "LIMIT ?", (limit,))
        return [StoredTile(r[0], r[1], r[2], bool(r[3]), r[4], r[5], None) for r in rows]

    def tiles(self, keys: list[tuple[str, int]]) -> list[StoredTile]:
        """The committed, not yet counted tiles among ``keys`` (scene, tile)."""
        out = []
        for scene_id, index in keys:
            rows = self._read("SELECT scene_id, tile_index, quality, resized, sent_gsd_m, data "
                              "FROM tiles WHERE scene_id = ? AND tile_index = ? AND "
                              "counted_at IS NULL", (scene_id, index))
            out += [StoredTile(r[0], r[1], r[2], bool(r[3]), r[4], bytes(r[5]), None)
                    for r in rows]
        return out

    def uncounted_since(self, before: float, limit: int) -> list[tuple[str, int]]:
        """Tiles committed before ``before`` and still not counted (work a queue lost)."""
        return [(r[0], r[1]) for r in self._read(
            "SELECT scene_id, tile_index FROM tiles WHERE counted_at IS NULL AND "
            "committed_at < ? ORDER BY committed_at LIMIT ?", (before, limit))]

    def count_uncounted(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM tiles WHERE counted_at IS NULL")[0][0])

    def set_counts(self, counts: list[tuple]) -> None:
        """(scene, tile, count) or (scene, tile, count, per-class counts) per tile."""
        now = time.time()
        rows = []
        for s, i, c, *rest in counts:
            per_class = rest[0] if rest else None
            rows.append((c, now, None if per_class is None else
                         json.dumps([float(v) for v in per_class]), s, i))
        # The first count committed stands: a tile counted again (a redelivery after a
        # worker died between its commit and its acknowledgement) changes nothing.
        self.db.executemany("UPDATE tiles SET ground_count = ?, counted_at = ?, "
                            "class_counts = ? WHERE scene_id = ? AND tile_index = ? AND "
                            "counted_at IS NULL", rows)

    def record_count_failures(self, keys: list[tuple[str, int]]
                              ) -> dict[tuple[str, int], int]:
        """One more failed count for each of these tiles (scene, tile); returns each one's
        failures so far. The segment's workers quarantine a tile on this count, kept with
        the tile, not only on the queue's delivery count: a re-announced tile is a new
        message, and the queue's count is not always right (``ground.queue_counting``)."""
        failures = {}
        with self.db.transaction() as cur:
            for key in keys:
                row = cur.execute("UPDATE tiles SET count_failures = count_failures + 1 WHERE "
                                  "scene_id = ? AND tile_index = ? RETURNING count_failures",
                                  key).fetchone()
                if row is not None:  # a tile not committed here has no count to fail
                    failures[key] = int(row[0])
        return failures

    def bytes_received(self) -> int:
        return int(self._read("SELECT COALESCE(SUM(bytes), 0) FROM link_log")[0][0])

    def header(self, scene_id: str) -> link_pb2.SceneHeader | None:
        rows = self._read("SELECT header FROM scenes WHERE scene_id = ?", (scene_id,))
        return link_pb2.SceneHeader.FromString(rows[0][0]) if rows else None

    def summary(self, scene_id: str) -> link_pb2.SceneSummary | None:
        rows = self._read("SELECT summary FROM scenes WHERE scene_id = ?", (scene_id,))
        return link_pb2.SceneSummary.FromString(rows[0][0]) if rows and rows[0][0] else None

    def ground_counts(self, scene_id: str) -> dict[int, tuple[float | None, int]]:
        """Committed tiles of a scene: index -> (ground count or None yet, quality)."""
        return {r[0]: (r[1], r[2]) for r in self._read(
            "SELECT tile_index, ground_count, quality FROM tiles WHERE scene_id = ?",
            (scene_id,))}

    def ground_class_counts(self, scene_id: str) -> dict[int, list[float]]:
        """Counted tiles of a scene that carry a per-class split: index -> counts."""
        return {r[0]: json.loads(r[1]) for r in self._read(
            "SELECT tile_index, class_counts FROM tiles WHERE scene_id = ? AND "
            "class_counts IS NOT NULL", (scene_id,))}

    def scene_ids(self) -> list[str]:
        return [r[0] for r in self._read("SELECT scene_id FROM scenes ORDER BY received_at")]

    def bundle_versions(self) -> list[tuple[str, str, float, int]]:
        """Per sender, its newest scene (by arrival): sender, scene id, when its header
        arrived, and the uplink bundle version in force when it was planned (the header's)."""
        rows = self._read("SELECT sender, COALESCE(name, scene_id), received_at, header FROM "
                          "scenes s WHERE received_at = (SELECT MAX(received_at) FROM scenes t "
                          "WHERE t.sender = s.sender) ORDER BY sender")
        seen: dict[str, tuple[str, str, float, int]] = {}
        for sender, name, at, header in rows:
            seen.setdefault(sender, (sender, name, at, link_pb2.SceneHeader.FromString(
                bytes(header)).bundle_version))
        return list(seen.values())

    def explored_tiles(self, sender: str | None = None, counted: bool = True,
                       by_value: bool = False) -> list[ExploredTile]:
        """The exploration tiles held (of one sender when named; ``counted``: only those
        the ground has counted; ``by_value``: the tiles sent by value too), oldest first:
        the evidence a recalibration is fit on."""
        sql = ("SELECT t.scene_id, s.sender, t.tile_index, t.onboard_count, t.confidence, "
               "t.ground_count, t.quality, t.committed_at, t.exploration, length(t.data) "
               "FROM tiles t JOIN scenes s ON s.scene_id = t.scene_id WHERE "
               + ("1 = 1" if by_value else "t.exploration = 1"))
        args: tuple = ()
        if counted:
            sql += " AND t.counted_at IS NOT NULL"
        if sender is not None:
            sql += " AND s.sender = ?"
            args = (sender,)
        return [ExploredTile(r[0], r[1], int(r[2]), r[3], r[4], r[5], int(r[6]), float(r[7]),
                             bool(r[8]), int(r[9]))
                for r in self._read(sql + " ORDER BY t.committed_at, t.scene_id, "
                                          "t.tile_index", args)]

    def counted_tiles(self, sender: str, limit: int) -> list[CountedTile]:
        """A sender's newest ``limit`` tiles with a ground count (sent by value or drawn for
        exploration), with their bytes, newest first."""
        sql = ("SELECT t.scene_id, t.tile_index, t.exploration, t.resized, t.sent_gsd_m, "
               "t.quality, t.data, t.ground_count, t.onboard_count, t.committed_at FROM tiles t "
               "JOIN scenes s ON s.scene_id = t.scene_id WHERE s.sender = ? AND "
               "t.counted_at IS NOT NULL AND t.ground_count IS NOT NULL ORDER BY "
               "t.committed_at DESC, t.scene_id, t.tile_index LIMIT ?")
        return [CountedTile(r[0], int(r[1]), bool(r[2]), bool(r[3]), float(r[4]), int(r[5]),
                            bytes(r[6]), float(r[7]), r[8], float(r[9]))
                for r in self._read(sql, (sender, int(limit)))]

    def log_bytes(self, n: int) -> None:
        self._write("INSERT INTO link_log (at, bytes) VALUES (?, ?)", (time.time(), n))

    def link_log(self, since: float) -> list[tuple[float, int]]:
        return self._read("SELECT at, bytes FROM link_log WHERE at >= ? ORDER BY at", (since,))


    def migrate_keys(self) -> None:
        with self.db.transaction() as cur:
            for sql in MIGRATE_KEYS:
                cur.execute(sql, ("%:%",) * sql.count("?"))


class StoreLost(RuntimeError):
    """The store's file was removed or replaced under the running service."""


class SQLiteStore(SQLStore):
    """The embedded default: one SQLite file. It notices when the file is removed or
    replaced under it (``check``: the file's identity, compared before any part is
    acknowledged): writes would go to a file nobody will open again, so the ground stops
    acknowledging and says so (``StoreLost``) until it is restarted on a store it holds."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        super().__init__(Database(path, SCHEMA))
        columns = {r[1] for r in self._read("PRAGMA table_info(tiles)")}
        for name, kind in TILE_COLUMNS_ADDED.items():  # a store written before them
            if name not in columns:
                self._write(f"ALTER TABLE tiles ADD COLUMN {name} {kind}")
        self._write(EXPLORED_INDEX)
        scene_columns = {r[1] for r in self._read("PRAGMA table_info(scenes)")}
        if "sender" not in scene_columns:
            self._write("ALTER TABLE scenes ADD COLUMN sender TEXT NOT NULL DEFAULT ''")
        if "name" not in scene_columns:  # a store written before scene keys
            self._write("ALTER TABLE scenes ADD COLUMN name TEXT")
        self.migrate_keys()
        self._identity = self._file_identity()
        self.lost: str | None = None

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Raise StoreLost when the file is no longer the one this store opened."""
        if self.lost is None and self._file_identity() != self._identity:
            self.lost = (f"the ground's store {self.path.name} was removed or replaced "
                         "while the ground ran; restart the ground")
        if self.lost is not None:
            raise StoreLost(self.lost)


class PostgresStore(SQLStore):
    """The ground segment's shared store: one PostgreSQL database for every station and
    counting worker (``ground.pg_db``)."""

    def __init__(self, url: str):
        from ground.pg_db import PgDatabase

        self.url = url
        super().__init__(PgDatabase(url, SCHEMA))
        # A database made before quarantine counts (under the schema's lock, as creation).
        self.db.script("".join(f"ALTER TABLE tiles ADD COLUMN IF NOT EXISTS {name} {kind}; "
                               for name, kind in TILE_COLUMNS_ADDED.items())
                       + "ALTER TABLE scenes ADD COLUMN IF NOT EXISTS name TEXT; "
                       + EXPLORED_INDEX)
        self.migrate_keys()

    def check(self) -> None:
        """A server's database cannot be removed under it unnoticed (its own checks)."""


def open_store(settings) -> SQLStore:
    """PostgreSQL when the settings name a database URL, else the SQLite file."""
    if settings.database_url:
        return PostgresStore(settings.database_url)
    return SQLiteStore(settings.db_path)

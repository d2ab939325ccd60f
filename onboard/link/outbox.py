"""The durable outbox: every part of a scene's downlink, kept until the ground acknowledges it.

SQLite (``shared.sqlite_db``: WAL, ``synchronous=FULL``): a scene's parts (header,
summary, tile chunks) are written in one transaction before the scene is reported as queued,
so nothing decided onboard is lost between the decision and the ground's acknowledgement,
across crashes and restarts. Parts go out in the order they were queued; an acknowledged
part is marked sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from shared.sqlite_db import Database
from shared.wire import link_pb2

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scene_id TEXT NOT NULL,
    kind TEXT NOT NULL,            -- header, summary, chunk
    tile_index INTEGER,            -- chunks
    payload BLOB NOT NULL,         -- a serialised DownlinkMessage (seq left 0)
    size INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    acked_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE acked_at IS NULL;
"""


@dataclass
class Part:
    seq: int
    scene_id: str
    kind: str
    tile_index: int | None
    message: link_pb2.DownlinkMessage
    size: int


class Outbox:
    def __init__(self, path: str | Path):
        self.db = Database(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def put_scene(self, messages: list[link_pb2.DownlinkMessage],
                  also: list[tuple[str, tuple]] = ()) -> None:
        """Queue a scene's parts atomically (all or none), with ``also``: more statements
        (sql, args) on the same database committed in the same transaction."""
        rows = []
        now = time.time()
        for m in messages:
            kind = m.WhichOneof("payload")
            if kind is None:
                raise ValueError("empty downlink message")
            scene = getattr(m, kind).scene_id
            tile = m.chunk.tile_index if kind == "chunk" else None
            payload = m.SerializeToString()
            rows.append((scene, kind, tile, payload, len(payload), now))
        with self.db.transaction() as cur:
            cur.executemany("INSERT INTO outbox (scene_id, kind, tile_index, payload, size, "
                            "queued_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
            for sql, args in also:
                cur.execute(sql, args)

    def pending(self, limit: int = 64) -> list[Part]:
        rows = self.db.query("SELECT seq, scene_id, kind, tile_index, payload, size FROM outbox "
                             "WHERE acked_at IS NULL ORDER BY seq LIMIT ?", (limit,))
        out = []
        for seq, scene, kind, tile, payload, size in rows:
            msg = link_pb2.DownlinkMessage.FromString(payload)
            msg.seq = seq
            out.append(Part(seq, scene, kind, tile, msg, size))
        return out

    def ack(self, seqs: list[int]) -> None:
        self.db.executemany("UPDATE outbox SET acked_at = ? WHERE seq = ? AND acked_at IS NULL",
                            [(time.time(), s) for s in seqs])

    def ack_committed(self, reply: link_pb2.CommittedReply) -> int:
        """Mark what the ground says it holds of a scene as sent (resume after an outage)."""
        conds = []
        if reply.header:
            conds.append(("kind = 'header'", ()))
        if reply.summary:
            conds.append(("kind = 'summary'", ()))
        if reply.tiles:
            marks = ",".join("?" * len(reply.tiles))
            conds.append((f"kind = 'chunk' AND tile_index IN ({marks})", tuple(reply.tiles)))
        return sum(self.db.execute(
            f"UPDATE outbox SET acked_at = ? WHERE scene_id = ? AND acked_at IS NULL AND {cond}",
            (time.time(), reply.scene_id, *args)) for cond, args in conds)

    def scene_progress(self, scene_id: str) -> dict[str, int]:
        return self._progress("WHERE scene_id = ?", (scene_id,))

    def stats(self) -> dict[str, int]:
        return self._progress()

    def pending_scenes(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT DISTINCT scene_id FROM outbox WHERE acked_at IS NULL ORDER BY scene_id")]

    def _progress(self, where: str = "", args: tuple = ()) -> dict[str, int]:
        q, qb, s, sb = self.db.query(
            "SELECT SUM(acked_at IS NULL), COALESCE(SUM(CASE WHEN acked_at IS NULL THEN "
            "size END), 0), SUM(acked_at IS NOT NULL), COALESCE(SUM(CASE WHEN acked_at "
            f"IS NOT NULL THEN size END), 0) FROM outbox {where}", args)[0]
        return {"parts_queued": int(q or 0), "bytes_queued": int(qb),
                "parts_sent": int(s or 0), "bytes_sent": int(sb)}

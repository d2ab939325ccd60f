"""The durable outbox: every part of a scene's downlink, kept until the ground confirms the scene.

SQLite (``shared.sqlite_db``: WAL, ``synchronous=FULL``): a scene's parts (header,
summary, tile chunks) are written in one transaction before the scene is reported as queued,
so nothing decided onboard is lost between the decision and the ground's acknowledgement,
across crashes and restarts. Parts go out in the order they were queued; an acknowledged
part is marked sent (with the ground's reason when it refused it).

A part's acknowledgement is not the end: the scene is **confirmed** only when the ground
says it holds every part (``reconcile``, fed the ground's ``Committed`` reply). Until then
the parts stay; once every part has been acknowledged, any the ground does not hold (it lost
its store, or refused them) go back in the queue, up to ``MAX_SENDS`` times each, after
which the scene is **refused** with the ground's last reason. A confirmed scene's payloads
are dropped (their sizes stay, for the figures): the ground holds them durably now.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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
    acked_at REAL,
    error TEXT,                    -- the ground's reason when it refused the part
    sends INTEGER NOT NULL DEFAULT 1,  -- sends the ground refused (and the first)
    losses INTEGER NOT NULL DEFAULT 0  -- times the ground took it, then lost its store
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_scene ON outbox (scene_id);
CREATE TABLE IF NOT EXISTS confirmations (
    scene_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,           -- confirmed, refused
    at REAL NOT NULL,
    error TEXT
);
"""
# Each part goes down at most this often before its scene is given up as refused.
MAX_SENDS = 3
# A part the ground took and then lost (its store lost or replaced) goes again, as often as
# that happens, up to this many times: a store loss is not the part's fault.
MAX_LOSSES = 20


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
        columns = {r[1] for r in self.db.query("PRAGMA table_info(outbox)")}
        for name, decl in (("error", "TEXT"), ("sends", "INTEGER NOT NULL DEFAULT 1"),
                           ("losses", "INTEGER NOT NULL DEFAULT 0")):
            if name not in columns:  # an outbox written before confirmations
                self.db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self.db.close()

    def put_scene(self, messages: Iterable[link_pb2.DownlinkMessage],
                  also: list[tuple[str, tuple]] = ()) -> None:
        """Queue a scene's parts atomically (all or none), with ``also``: more statements
        (sql, args) on the same database committed in the same transaction. ``messages``
        may be an iterator: each is serialised and inserted as it comes (a large scene's
        downlink is never in memory whole)."""
        now = time.time()

        def rows():
            for m in messages:
                kind = m.WhichOneof("payload")
                if kind is None:
                    raise ValueError("empty downlink message")
                scene = getattr(m, kind).scene_id
                tile = m.chunk.tile_index if kind == "chunk" else None
                payload = m.SerializeToString()
                yield scene, kind, tile, payload, len(payload), now

        with self.db.transaction() as cur:
            cur.executemany("INSERT INTO outbox (scene_id, kind, tile_index, payload, size, "
                            "queued_at) VALUES (?, ?, ?, ?, ?, ?)", rows())
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

    def ack(self, acks: dict[int, str | None]) -> None:
        """Mark parts acknowledged: seq -> the ground's refusal reason, None when taken."""
        self.db.executemany("UPDATE outbox SET acked_at = ?, error = ? WHERE seq = ? AND "
                            "acked_at IS NULL",
                            [(time.time(), err, seq) for seq, err in acks.items()])

    def unconfirmed_scenes(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT DISTINCT scene_id FROM outbox WHERE scene_id NOT IN (SELECT scene_id "
            "FROM confirmations) ORDER BY scene_id")]

    def reconcile(self, reply: link_pb2.CommittedReply) -> str | None:
        """Take the ground's word for what it holds of a scene: held parts are sent; the
        scene is confirmed when it holds all; when every part has been acknowledged but some
        are not held, those go again (or the scene is refused after ``MAX_SENDS``). Returns
        the scene's new state ("confirmed", "refused", "resent") or None (still sending)."""
        held = {("header", None)} if reply.header else set()
        held |= {("summary", None)} if reply.summary else set()
        held |= {("chunk", t) for t in reply.tiles}
        now = time.time()
        with self.db.transaction() as cur:
            rows = cur.execute("SELECT seq, kind, tile_index, acked_at, error, sends, losses "
                               "FROM outbox WHERE scene_id = ?",
                               (reply.scene_id,)).fetchall()
            have = [r for r in rows if (r[1], r[2]) in held]
            cur.executemany("UPDATE outbox SET acked_at = COALESCE(acked_at, ?), error = NULL "
                            "WHERE seq = ?", [(now, r[0]) for r in have])
            missing = [r for r in rows if (r[1], r[2]) not in held]
            if not missing:
                return self._settle(cur, reply.scene_id, "confirmed", None, now)
            if any(r[3] is None for r in missing):
                return None  # parts still on their way: nothing to conclude yet
            # A part the ground took (no error) and no longer holds was lost with its store:
            # sent again, not counted against it. A refused part is counted, unless the
            # scene's header is missing too: then the header is why (it goes again first,
            # being the scene's first part), and the tiles it owns go with it.
            header_missing = any(r[1] == "header" for r in missing)
            refused = [r for r in missing if r[4] is not None and not (
                header_missing and r[1] != "header")]
            lost = [r for r in missing if r not in refused]
            spent = [r for r in refused if r[5] >= MAX_SENDS] + \
                [r for r in lost if r[6] >= MAX_LOSSES]
            if spent:
                reason = next((r[4] for r in spent if r[4]), None) or \
                    "the ground keeps losing it"
                return self._settle(cur, reply.scene_id, "refused",
                                    f"{spent[0][1]} part not taken after {spent[0][5]} sends "
                                    f"and {spent[0][6]} losses: {reason}", now)
            cur.executemany("UPDATE outbox SET acked_at = NULL, error = NULL, sends = sends + 1 "
                            "WHERE seq = ?", [(r[0],) for r in refused])
            cur.executemany("UPDATE outbox SET acked_at = NULL, error = NULL, losses = losses "
                            "+ 1 WHERE seq = ?", [(r[0],) for r in lost])
            return "resent"

    @staticmethod
    def _settle(cur, scene_id: str, state: str, error: str | None, now: float) -> str:
        cur.execute("INSERT OR REPLACE INTO confirmations (scene_id, state, at, error) "
                    "VALUES (?, ?, ?, ?)", (scene_id, state, now, error))
        if state == "confirmed":  # the ground holds them durably: free the space
            cur.execute("UPDATE outbox SET payload = x'' WHERE scene_id = ?", (scene_id,))
        return state

    def confirmation(self, scene_id: str) -> tuple[str, str | None] | None:
        """(state, error) once the scene is confirmed or refused, else None."""
        rows = self.db.query("SELECT state, error FROM confirmations WHERE scene_id = ?",
                             (scene_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def scene_progress(self, scene_id: str) -> dict[str, int]:
        return self._progress("WHERE scene_id = ?", (scene_id,))

    def stats(self) -> dict[str, int]:
        return self._progress()

    def _progress(self, where: str = "", args: tuple = ()) -> dict[str, int]:
        q, qb, s, sb, r = self.db.query(
            "SELECT SUM(acked_at IS NULL), COALESCE(SUM(CASE WHEN acked_at IS NULL THEN "
            "size END), 0), SUM(acked_at IS NOT NULL), COALESCE(SUM(CASE WHEN acked_at "
            f"IS NOT NULL THEN size END), 0), SUM(error IS NOT NULL) FROM outbox {where}",
            args)[0]
        return {"parts_queued": int(q or 0), "bytes_queued": int(qb),
                "parts_sent": int(s or 0), "bytes_sent": int(sb),
                "parts_refused": int(r or 0)}

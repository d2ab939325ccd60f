"""The onboard record of accepted scenes, in the outbox's database (one SQLite file).

A scene is ``queued`` once its upload is on disk (before the 202 answer), ``processing``
while the worker plans it, then ``downlinking`` (its parts are in the outbox: written in the
same transaction as this state, so a crash never leaves one without the other) or
``failed``. At start-up, scenes left ``processing`` by a crash are queued again, each
restart counted: a scene that was being processed at ``MAX_ATTEMPTS`` crashes (one that gets
the process killed, say for memory) is failed with that reason instead of killing every
restart behind it.

A scene's uploaded file is needed only until the scene is decided: once it is
``downlinking`` (its parts are in the outbox) or ``failed``, the file is deleted; one a crash
left behind after that is deleted at the next start.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

from onboard.link.outbox import Outbox
from onboard.scene_job import SceneJob, queued_before_jobs

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenes (
    scene_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    result TEXT,
    error TEXT
);
"""
MAX_ATTEMPTS = 3


class ScenesDB:
    def __init__(self, outbox: Outbox):
        self.outbox, self.db = outbox, outbox.db
        self.db.script(SCHEMA)
        columns = {row[1] for row in self.db.query("PRAGMA table_info(scenes)")}
        if "attempts" not in columns:  # a store from before attempts were counted
            self.db.execute("ALTER TABLE scenes ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        if "job" not in columns:  # a store from before jobs were resolved at intake
            self.db.execute("ALTER TABLE scenes ADD COLUMN job TEXT")
        with self.db.transaction() as cur:
            cur.execute("UPDATE scenes SET state = 'failed', error = ? WHERE state = "
                        "'processing' AND attempts >= ?",
                        (f"the service stopped while processing this scene {MAX_ATTEMPTS} "
                         "times (e.g. killed for memory); not retried", MAX_ATTEMPTS))
            cur.execute("UPDATE scenes SET state = 'queued' WHERE state = 'processing'")
        for (scene_id,) in self.db.query("SELECT scene_id FROM scenes WHERE state IN "
                                         "('downlinking', 'failed')"):
            self._drop_input(scene_id)

    def _drop_input(self, scene_id: str) -> None:
        """Delete a decided scene's upload (and its folder once empty)."""
        rows = self.db.query("SELECT path FROM scenes WHERE scene_id = ?", (scene_id,))
        if rows and rows[0][0]:
            path = Path(rows[0][0])
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty, or gone already
                path.parent.rmdir()

    def add(self, job: SceneJob, meta: dict, queue_size: int | None = None) -> bool:
        """Record a scene as queued, with its job and the metadata it was sent with; with
        ``queue_size``, only while fewer are waiting (the check and the insert are one
        statement, so concurrent uploads cannot overfill the queue). False when the queue
        is full."""
        row = (job.scene_id, job.path, json.dumps(meta), job.to_json(), time.time())
        if queue_size is None:
            self.db.execute("INSERT INTO scenes (scene_id, state, path, meta, job, "
                            "submitted_at) VALUES (?, 'queued', ?, ?, ?, ?)", row)
            return True
        return self.db.execute(
            "INSERT INTO scenes (scene_id, state, path, meta, job, submitted_at) SELECT ?, "
            "'queued', ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM scenes WHERE state IN "
            "('queued', 'processing')) < ?", (*row, queue_size)) == 1

    def exists(self, scene_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM scenes WHERE scene_id = ?", (scene_id,)))

    def queued(self) -> int:
        return self.db.query("SELECT COUNT(*) FROM scenes WHERE state IN "
                             "('queued', 'processing')")[0][0]

    def claim_next(self) -> SceneJob | None:
        """The oldest queued scene's job, now ``processing``."""
        with self.db.transaction() as cur:
            row = cur.execute("SELECT scene_id, path, meta, job FROM scenes WHERE state = "
                              "'queued' ORDER BY submitted_at LIMIT 1").fetchone()
            if row is None:
                return None
            cur.execute("UPDATE scenes SET state = 'processing', attempts = attempts + 1 "
                        "WHERE scene_id = ?", (row[0],))
        if row[3] is None:  # queued before jobs were resolved at intake
            return queued_before_jobs(row[0], row[1], json.loads(row[2]))
        return SceneJob.from_json(row[3])

    def release_unfinished(self) -> int:
        """On a clean stop: scenes being processed go back to the queue, their attempt not
        counted. Returns how many."""
        return self.db.execute("UPDATE scenes SET state = 'queued', attempts = MAX(attempts "
                               "- 1, 0) WHERE state = 'processing'")

    def finish(self, scene_id: str, result: dict, messages: Iterable) -> None:
        self.outbox.put_scene(messages, also=[(
            "UPDATE scenes SET state = 'downlinking', result = ? WHERE scene_id = ?",
            (json.dumps(result), scene_id))])
        self._drop_input(scene_id)

    def fail(self, scene_id: str, error: str) -> None:
        self.db.execute("UPDATE scenes SET state = 'failed', error = ? WHERE scene_id = ?",
                        (error, scene_id))
        self._drop_input(scene_id)

    def get(self, scene_id: str) -> dict | None:
        rows = self.db.query("SELECT scene_id, state, meta, submitted_at, result, error "
                             "FROM scenes WHERE scene_id = ?", (scene_id,))
        if not rows:
            return None
        row = rows[0]
        return {"scene_id": row[0], "state": row[1], "metadata": json.loads(row[2]),
                "submitted_at": row[3], "result": json.loads(row[4]) if row[4] else None,
                "error": row[5]}

    def listing(self, limit: int = 1000) -> list[dict]:
        """The newest ``limit`` scenes, oldest first: id, state, submission time, the
        classes asked for and the onboard total once planned."""
        rows = self.db.query("SELECT scene_id, state, meta, submitted_at, result, error FROM "
                             "scenes ORDER BY submitted_at DESC, scene_id LIMIT ?", (limit,))
        out = []
        for sid, state, meta, at, result, error in reversed(rows):
            r = json.loads(result) if result else {}
            out.append({"scene_id": sid, "state": state, "submitted_at": at,
                        "classes": r.get("classes") or json.loads(meta).get("classes"),
                        "onboard_total": r.get("onboard_total"),
                        "tiles_by_decision": r.get("tiles_by_decision"), "error": error})
        return out

    def states(self) -> dict[str, int]:
        return dict(self.db.query("SELECT state, COUNT(*) FROM scenes GROUP BY state"))

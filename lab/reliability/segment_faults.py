"""The fault suite on the ground segment: a station and two counting workers on a fresh
PostgreSQL database and JetStream stream, one fault each run (``targetfuse faults --segment``).

The stack is the embedded suite's (``faults.Stack``: the onboard service as a process,
the link through the relay, the same scene), with its ground a station (``lab.services.segment``:
``count_here`` off, its store PostgreSQL, each committed tile announced on NATS) and the
counting done by ``targetfuse-ground-worker`` processes. The faults are the segment's own:

- the station killed (SIGKILL) mid-downlink and restarted: a tile committed and not yet
  announced is swept up by the workers;
- a worker killed while it holds fetched, unacknowledged tiles (mid-count): JetStream gives
  them to the other after the ack wait (kept short, 10 s, so a run is short);
- the stream deleted while tiles wait in it (the workers frozen so they do wait): whoever
  finds it missing makes it again and the workers announce every uncounted tile again;
- a poison tile: PostgreSQL refuses every count of the first tile committed (a trigger the
  suite installs), so each worker's commit of its batch fails; it must be quarantined (no
  count, not retried forever) while every other tile is counted.

Each run measures what the embedded one does (lost, counted twice, stuck, left behind, 5xx),
read from PostgreSQL, and the segment's own: each tile's count against the fault-free run's
(a tile counted twice or from a partial tile would differ), tiles quarantined (any beyond the
poison tile are innocent ones lost to it), the poison tile's tries, JetStream's redeliveries
and what is left in the queue. Results: ``docs/reliability/segment_faults.json``, rendered
into ``docs/RELIABILITY.md`` by ``targetfuse report-reliability``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.reliability.faults import (
    RESULTS,
    SCENE_ID,
    Stack,
    base_row,
    drive,
    kill_ground_mid_downlink,
    leftovers,
    no_fault,
)
from lab.reliability.faults import _mid_downlink as mid_downlink
from lab.services.live import fresh_database
from lab.services.segment import Processes, fresh_stream, open_queue, segment_env, start_worker

SEGMENT_RESULTS = RESULTS.with_name("segment_faults.json")
ACK_WAIT_S = 10.0  # short, so a killed worker's tiles come back within a short run
# A tile's count may differ in its last digits when counted in another batch; a tile
# counted twice, or from a partial tile, differs by far more.
TILE_TOLERANCE = 0.05

# The poison: PostgreSQL refuses every real count of the first tile the station commits
# (a NaN, the quarantine's mark, is let through). Installed before the scene is sent.
POISON_SQL = """
CREATE TABLE poisoned (scene_id TEXT NOT NULL, tile_index INTEGER NOT NULL);
CREATE FUNCTION poison_first() RETURNS trigger AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM poisoned) THEN
    INSERT INTO poisoned VALUES (NEW.scene_id, NEW.tile_index);
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER poison_first AFTER INSERT ON tiles FOR EACH ROW
  EXECUTE FUNCTION poison_first();
CREATE FUNCTION refuse_poisoned() RETURNS trigger AS $$
BEGIN
  IF NEW.ground_count IS NOT NULL AND NEW.ground_count <> 'NaN'::real AND EXISTS (
      SELECT 1 FROM poisoned p WHERE p.scene_id = NEW.scene_id
      AND p.tile_index = NEW.tile_index) THEN
    RAISE EXCEPTION 'injected: the count of tile %/% cannot be committed',
      NEW.scene_id, NEW.tile_index;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_poisoned BEFORE UPDATE OF ground_count ON tiles FOR EACH ROW
  EXECUTE FUNCTION refuse_poisoned();
"""


@dataclass
class SegmentStack(Stack):
    """``Stack`` with its ground a station of the segment and counting by worker
    processes; ``workers``: how many start with it; ``poison``: install the poison."""

    admin: str = ""
    nats_url: str = ""
    workers_at_start: int = 2
    poison: bool = False
    events: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.db_url, self._drop = fresh_database(self.admin, "tf_faults")
        self.stream = fresh_stream("TFFAULTS")
        # The stack's "ground" is the station (a worker counts whatever this says).
        self.env.update(segment_env(self.db_url, self.nats_url, self.stream, ACK_WAIT_S),
                        TARGETFUSE_GROUND_COUNT_HERE="false")
        self.workers = Processes(self.folder)
        self.queue, self.last_queue = None, {}

    def start_all(self) -> None:
        for n in range(1, self.workers_at_start + 1):
            start_worker(self.workers, f"worker-{n}", self.env)
        self.start("ground")  # makes the schema and the stream
        self.queue = open_queue(self.nats_url, self.stream)
        if self.poison:
            self.sql(POISON_SQL)
        self.start("onboard")
        self.workers.wait_ready()

    def settled(self, g: dict | None, o: dict | None) -> bool:
        """With the poison, the scene can never be complete (a downlinked tile without a
        ground count: its onboard count stands in, and the ground says incomplete); settled
        once every tile is counted or quarantined and the satellite is done."""
        if self.poison and g and g.get("summary_received") and not g.get("complete"):
            g = {**g, "complete": g["tiles_counted"] == g["tiles_received"] > 0}
        return super().settled(g, o)

    def stop(self) -> None:
        if self.queue is not None:  # what the queue holds once the last acks landed
            self.last_queue = settle_queue(self)
        self.workers.stop()
        super().stop()

    def close(self) -> None:
        """Remove the stream and the database (after the run is measured)."""
        try:
            queue = self.queue or open_queue(self.nats_url, self.stream)
            with contextlib.suppress(Exception):  # deleted by the fault, not made again
                queue.delete_stream()
            queue.close()
        finally:
            self._drop()

    def sql(self, statement: str, args: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(statement, args or None)
            return cur.fetchall() if cur.description else []

    def scene_tiles(self) -> dict[int, tuple[float | None, int]]:
        """The scene's tiles in the store: their count and failed commits."""
        rows = self.sql("SELECT tile_index, ground_count, count_failures FROM tiles WHERE "
                        "scene_id LIKE %s", (f"%:{SCENE_ID}",))
        return {i: (c, f) for i, c, f in rows}

    def ground_rows(self) -> tuple[int, int]:
        chunks = self.sql("SELECT COUNT(*) FROM chunks")[0][0]
        return chunks, len(self.scene_tiles())

    def queue_state(self) -> dict[str, int]:
        try:
            return self.queue.consumer_state()
        except Exception:  # noqa: BLE001 - the stream deleted (on purpose), not made yet
            return {"pending": 0, "ack_pending": 0, "redelivered": 0, "redeliveries": 0}

    def event(self, what: str) -> None:
        self.events.append(what)


# --- the segment's faults ------------------------------------------------------------------

def kill_worker_mid_count(stack: SegmentStack) -> None:
    """One worker up at first, so the one killed is the one holding the tiles; the second
    starts at the kill, the first comes back 5 s later."""
    if not stack.wait(lambda: stack.queue_state()["ack_pending"] > 0, 120, 0.02):
        raise RuntimeError("no tile was ever fetched and held unacknowledged")
    held = stack.queue_state()["ack_pending"]
    stack.workers.kill("worker-1")
    stack.event(f"worker-1 killed holding {held} unacknowledged tiles")
    start_worker(stack.workers, "worker-2", stack.env)
    time.sleep(5)
    stack.workers.restart("worker-1")


def delete_stream_while_queued(stack: SegmentStack) -> None:
    """The workers frozen mid-downlink so that tiles wait in the stream; the stream deleted;
    the workers let go."""
    mid_downlink(stack)
    workers = list(stack.workers.procs)
    for w in workers:
        stack.workers.signal(w, signal.SIGSTOP)
    try:
        if not stack.wait(lambda: stack.queue_state()["pending"] >= 1, 60, 0.1):
            raise RuntimeError("no tile waited in the stream")
        queued = stack.queue_state()["pending"]
        stack.queue.delete_stream()
        stack.event(f"stream deleted with {queued} tiles waiting in it")
    finally:
        for w in workers:
            stack.workers.signal(w, signal.SIGCONT)


def poison_with_tiles_queued(stack: SegmentStack) -> None:
    """The workers start once every tile waits in the queue, so the poison tile is fetched
    in one batch with the good ones (one tile at a time, it would fail alone)."""
    if not stack.wait(lambda: (stack.onboard_record() or {}).get("state") == "delivered",
                      120, 0.2):
        raise RuntimeError("the downlink never finished")
    stack.event(f"workers started with {stack.queue_state()['pending']} tiles queued")
    for n in (1, 2):
        start_worker(stack.workers, f"worker-{n}", stack.env)


SCENARIOS: dict[str, tuple[Callable, dict, str]] = {
    "no fault": (no_fault, {}, "the reference run: a station, two workers"),
    "station kill -9 mid-downlink": (kill_ground_mid_downlink, {},
                                     "after the first tile is committed; restarted"),
    "worker kill -9 mid-count": (kill_worker_mid_count, {"workers_at_start": 1},
                                 "while it holds fetched, unacknowledged tiles; a second "
                                 "worker starts, the first restarts 5 s later"),
    "stream deleted while tiles are queued": (delete_stream_while_queued, {},
                                              "mid-downlink, the workers frozen so tiles wait "
                                              "in it; then let go"),
    "poison tile": (poison_with_tiles_queued, {"poison": True, "workers_at_start": 0},
                    "PostgreSQL refuses every count of the first tile committed; the workers "
                    "start with every tile queued"),
}


def settle_queue(stack: SegmentStack, timeout_s: float = 20.0) -> dict[str, int]:
    """The queue once the last acknowledgements landed (or as it is after ``timeout_s``)."""
    stack.wait(lambda: not (lambda s: s["pending"] + s["ack_pending"])(stack.queue_state()),
               timeout_s, 0.5)
    return stack.queue_state()


def run_scenario(name: str, work: Path, png: bytes, admin: str, nats_url: str,
                 reference: dict | None, timeout_s: float = 180.0) -> dict:
    fault, options, when = SCENARIOS[name]
    stack = SegmentStack(work / name.replace(" ", "-"), admin=admin, nats_url=nats_url,
                         **options)
    t0 = time.time()
    try:
        done, g, o = drive(stack, png, fault, timeout_s)
        queue = stack.last_queue
        left = leftovers(stack)
        tiles = stack.scene_tiles()
        poisoned = [i for i, in stack.sql("SELECT tile_index FROM poisoned")] \
            if stack.poison else []
    finally:
        stack.close()
    row = base_row(stack, name, when, t0, done, g, o, left)
    quarantined = sorted(i for i, (c, _) in tiles.items() if c is not None and c != c)
    counts = {i: c for i, (c, _) in tiles.items() if i not in quarantined}
    ref = {int(i): c for i, c in (reference or {}).get("tile_counts", {}).items()}
    ref = ref or counts
    differ = sorted(i for i, c in counts.items()
                    if c is None or i not in ref or abs(c - ref[i]) > TILE_TOLERANCE)
    over = sum(c or 0 for c in counts.values()) > sum(ref.get(i, 0) for i in counts) + \
        TILE_TOLERANCE
    row.update({
        "complete": bool(g.get("complete")),
        "counted_twice": int(over) + max(left["tile_rows"] - row["tiles_downlinked"], 0),
        "counts_match_reference": not differ, "tiles_differing": differ,
        "tile_counts": {str(i): c for i, c in sorted(counts.items())},
        "quarantined": quarantined, "poisoned": poisoned,
        "innocent_quarantined": [i for i in quarantined if i not in poisoned],
        "poison_tries": max((tiles[i][1] for i in poisoned if i in tiles), default=0),
        "redeliveries": queue["redeliveries"],
        "left_in_queue": queue["pending"] + queue["ack_pending"],
        "events": stack.events})
    return row

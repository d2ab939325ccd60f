"""Bad inputs against the ground segment: the embedded suite's battery (``bad_inputs``)
played against a station and a counting worker on PostgreSQL and NATS, plus what only the
segment has, its queue.

The stack is the segment fault suite's (``lab.reliability.segment_faults.SegmentStack``: the onboard
service, a station, one worker, all processes), with a second satellite's link key known to
the station. In order:

1. the onboard REST uploads (``uploads``) against the onboard service's process;
2. the hostile link parts (``wire_parts``) against the station: each must be REJECTED with
   its reason;
3. "tile ready" messages no station would publish, put straight on the stream (as anyone
   with publish rights on its subject can): each must leave the queue (dropped by the
   worker, or acknowledged as nothing to count) within ``QUEUE_WAIT_S`` with the worker
   still running;
4. a message published ahead under the id of the first tile of the scene about to come,
   then that scene sent through the satellite: it must be counted as fast as without the
   squatter (before the fix its real announcement was dropped as a duplicate and it waited
   for the sweep).

Afterwards: nothing of the bad inputs in PostgreSQL (tiles, partial chunks, summaries), no
onboard upload left, every ground route of every scene answering without a 5xx, the worker
alive, and the queue empty. Results go into ``segment_faults.json`` beside the fault runs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from lab.reliability.bad_inputs import broken_routes, play_uploads, play_wire_parts
from lab.reliability.faults import SCENE_ID, scene_png
from lab.reliability.segment_faults import SegmentStack
from lab.services.live import post_scene

QUEUE_WAIT_S = 15.0  # a bad message must be off the queue within this (the worker polls 1 s)
# The squatted scene's tiles must be counted this soon after their commit: the worker's
# sweep re-announces a lost tile only after 60 s (``lost_after_s``).
COUNT_WAIT_S = 30.0
OTHER_KEY = "o" * 32  # satellite-2's link key
UPLOAD_LIMIT = 4 << 20  # the good scene (a 3.3 MB PNG) fits


def queue_messages() -> list[tuple[str, bytes]]:
    """(what, body) of each message no station publishes."""
    ghost = {"scene_id": "satellite-1:ghost", "tile_index": 0}
    return [
        ("not JSON", b"not json"),
        ("a JSON list", b"[1, 2]"),
        ("JSON nested 50,000 deep", b"[" * 50_000 + b"]" * 50_000),
        ("a negative tile index", json.dumps({**ghost, "tile_index": -1}).encode()),
        ("a tile index of 1e308", json.dumps({**ghost, "tile_index": 1e308}).encode()),
        ("a tile index of NaN", b'{"scene_id": "satellite-1:ghost", "tile_index": NaN}'),
        ("a script for a scene id", json.dumps({"scene_id": "<img src=x onerror=1>",
                                                "tile_index": 0}).encode()),
        ("an unknown field", json.dumps({**ghost, "x": 1}).encode()),
        ("a tile never committed", json.dumps(ghost).encode()),
        ("900 kB of zeros", b"\x00" * 900_000),
    ]


def _queue_empty(stack: SegmentStack) -> bool:
    state = stack.queue_state()
    return state["pending"] + state["ack_pending"] == 0


def _publish(stack: SegmentStack, body: bytes, msg_id: str | None = None) -> None:
    queue = stack.queue
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    queue._call(queue._js.publish(queue.subject, body, headers=headers))


def _worker_running(stack: SegmentStack) -> bool:
    return all(p.poll() is None for p in stack.workers.procs.values())


def play_queue_messages(stack: SegmentStack) -> list[dict]:
    cases = []
    for what, body in queue_messages():
        _publish(stack, body)
        taken = stack.wait(lambda: _queue_empty(stack), QUEUE_WAIT_S, 0.2)
        running = _worker_running(stack)
        cases.append({"interface": "segment queue", "input": what,
                      "status": ("taken off the queue" if taken else "still queued") +
                      ("" if running else ", worker stopped"),
                      "clear_4xx": taken and running})
    return cases


def squatted_scene(stack: SegmentStack, timeout_s: float = 180.0) -> dict:
    """The scene sent after a message took its first tile's old-style id."""
    key = f"satellite-1:{SCENE_ID}"
    for msg_id in (f"{key}:0", f"{key}:0:"):
        _publish(stack, json.dumps({"scene_id": key, "tile_index": 0}).encode(), msg_id)
    t0 = time.time()
    post_scene(stack.url("onboard", "/v1/scenes"), scene_png(),
               {"scene_id": SCENE_ID, "gsd_m": 0.5}, key=stack.keys.rest_key)
    done = stack.wait(lambda: stack.settled(stack.ground_report(), stack.onboard_record()),
                      timeout_s, 0.2)
    g = stack.ground_report() or {}
    return {"settled": done, "seconds": round(time.time() - t0, 1),
            "tiles_received": g.get("tiles_received", 0),
            "tiles_counted": g.get("tiles_counted", 0)}


def longest_count_wait(stack: SegmentStack) -> float | None:
    """Seconds from a tile's commit to its count, the longest of the good scene's."""
    (wait,), = stack.sql("SELECT MAX(counted_at - committed_at) FROM tiles WHERE scene_id "
                         "LIKE %s", (f"%:{SCENE_ID}",))
    return None if wait is None else round(float(wait), 1)


def left_in_store(stack: SegmentStack) -> int:
    """Rows the bad inputs left in PostgreSQL (the good scene's own excluded)."""
    mine = f"%:{SCENE_ID}"
    return sum(stack.sql(f"SELECT COUNT(*) FROM {table} WHERE scene_id NOT LIKE %s{extra}",
                         (mine,))[0][0]
               for table, extra in (("tiles", ""), ("chunks", ""),
                                    ("scenes", " AND summary IS NOT NULL")))


def run_segment_bad_inputs(work: Path, admin: str, nats_url: str) -> dict:
    stack = SegmentStack(work / "bad-inputs", admin=admin, nats_url=nats_url,
                         workers_at_start=1)
    stack.env["TARGETFUSE_ONBOARD_MAX_UPLOAD_BYTES"] = str(UPLOAD_LIMIT)
    stack.keys.link_file.write_text(stack.keys.link_file.read_text() +
                                    f"satellite-2 {OTHER_KEY}\n")
    try:
        stack.start_all()
        cases, server_errors = play_uploads(stack.url("onboard", "/v1/scenes"),
                                            stack.keys.rest_key, stack.folder / "inputs",
                                            UPLOAD_LIMIT)
        cases += play_wire_parts(stack.ports["grpc"], stack.keys, OTHER_KEY)
        cases += play_queue_messages(stack)
        squatted = squatted_scene(stack)
        listing = stack.get("ground", "/v1/scenes")
        broken = broken_routes(stack.url("ground", ""), stack.keys.rest_key, listing)
        theirs = stack.sql("SELECT sender FROM scenes WHERE name = 'w-theirs'")
        worker_running = _worker_running(stack)
        queue_empty = stack.wait(lambda: _queue_empty(stack), QUEUE_WAIT_S, 0.2)
    finally:
        stack.stop()
    try:
        store_rows = left_in_store(stack)
        squatted["longest_count_wait_s"] = longest_count_wait(stack)
    finally:
        stack.close()
    onboard = stack.folder / "onboard"
    left_files = [p.name for p in (onboard / "incoming").glob("*")] + \
        [p.name for p in (onboard / "scenes").rglob("*") if p.is_file()
         and SCENE_ID not in p.parts]
    with sqlite3.connect(onboard / "onboard.db") as o:
        left_files += [f"scene row {r[0]}" for r in o.execute("SELECT scene_id FROM scenes")
                       if r[0] != SCENE_ID]
    wait = squatted["longest_count_wait_s"]
    return {"cases": cases, "server_errors": server_errors + stack.server_errors + broken,
            "left_behind": len(left_files) + store_rows,
            "left_behind_by_place": {"onboard files": left_files,
                                     "ground rows": store_rows},
            "good_scene_accepted": squatted["settled"],
            "squatted_id_held_nothing_back": squatted["settled"] and wait is not None and
            wait < COUNT_WAIT_S,
            "ground_still_counting": worker_running and squatted["tiles_counted"] ==
            squatted["tiles_received"] > 0,
            "ground_lists_scenes": listing is not None,
            "forged_scene_kept_its_owner": [r[0] for r in theirs] == ["satellite-2"],
            "ground_routes_answer": listing is not None and not broken,
            "queue_empty_after": queue_empty,
            "squatted_scene": squatted}

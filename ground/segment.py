"""Which counting a ground process does: the embedded worker, or one of the segment's.

``open_queue`` opens the segment's JetStream queue when the settings name a NATS URL;
``make_worker`` picks the counting worker: the embedded one polling the store (no queue),
a queue worker (``ground.queue_counting``), or none when this station leaves counting to
the segment's workers (``count_here`` off). ``main`` runs a counting worker alone, with no
link end or REST API: ``targetfuse ground-worker``, one per machine or container, as many as
the queue needs; it stops cleanly on SIGTERM (what it has fetched and not acknowledged is
redelivered to another). Having no port to probe, it touches a heartbeat file while its
passes finish; ``python -m ground.segment --alive`` (the container's probe) says whether the
file is fresh.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ground.settings import GroundSettings

HEARTBEAT = Path(os.environ.get("TARGETFUSE_GROUND_WORKER_HEARTBEAT",
                                "/tmp/targetfuse-worker.alive"))


def alive(max_age_s: float = 120.0, heartbeat: Path = HEARTBEAT) -> bool:
    try:
        return time.time() - heartbeat.stat().st_mtime < max_age_s
    except OSError:
        return False


class NoCounting:
    """A station whose tiles the segment's workers count."""

    ident = None

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool:
        return True

    def state(self) -> str:
        return "elsewhere"


def open_queue(settings: GroundSettings):
    if not settings.nats_url:
        return None
    from ground import startup
    from ground.tile_queue import NatsTileQueue

    return NatsTileQueue(settings.nats_url, stream=settings.nats_stream,
                         prefix=f"{settings.nats_stream.lower()}.tiles",
                         ack_wait_s=settings.nats_ack_wait_s,
                         max_deliver=settings.nats_max_deliver,
                         user=settings.nats_user, password=startup.nats_password(settings))


def make_worker(settings: GroundSettings, store, counter, error_model, queue):
    if not settings.count_here:
        return NoCounting()
    if queue is None:
        from ground.counting import CountingWorker

        return CountingWorker(store, counter, error_model, settings.batch_size)
    from ground.queue_counting import QueueCountingWorker

    return QueueCountingWorker(store, counter, queue, error_model, settings.batch_size)


def main(argv: Sequence[str] | None = None) -> int:
    from shared.settings_help import service_parser

    service_parser("targetfuse-ground-worker", "Run one counting worker of the ground "
                   "segment: it takes tiles from the NATS JetStream queue, counts them with "
                   "the deep counter and writes the counts to the PostgreSQL store. Needs "
                   "TARGETFUSE_GROUND_NATS_URL and TARGETFUSE_GROUND_DATABASE_URL; the other "
                   "settings are the ground service's (below).", GroundSettings).parse_args(argv)
    from ground.counter import GroundCounter
    from ground.store import open_store
    from shared.logs import json_logging
    from shared.model_bundle import PairFiles, load_error_model

    json_logging()
    settings = GroundSettings()
    if not settings.nats_url or not settings.database_url:
        raise SystemExit("a counting worker of the segment needs TARGETFUSE_GROUND_NATS_URL "
                         "and TARGETFUSE_GROUND_DATABASE_URL")
    store, queue = open_store(settings), open_queue(settings)
    counter = GroundCounter.shipped(settings.model, settings.models_dir,
                                    threads=settings.threads, batch_size=settings.batch_size)
    error_model = load_error_model(PairFiles.of(settings.model, settings.models_dir))
    worker = make_worker(settings.model_copy(update={"count_here": True}), store, counter,
                         error_model, queue)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    worker.start()
    while not done.wait(5.0):
        if worker.state() == "counting":
            HEARTBEAT.touch()
    worker.stop()
    worker.join(30)
    queue.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(0 if alive() else 1) if "--alive" in sys.argv else sys.exit(main())

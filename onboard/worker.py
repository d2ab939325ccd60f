"""The worker thread: claims queued scenes one at a time and has the processor run them.

A scene that fails is marked failed with its reason (``shared.errors.public``: what a
caller may read) and the worker goes on to the next: no scene can stop it. With nothing
queued it waits ``idle_s`` before asking again; ``busy`` says whether a scene is in hand.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from onboard.scene_job import SceneJob
from onboard.scenes_db import ScenesDB
from shared.errors import public

log = logging.getLogger("targetfuse.onboard.processing")  # the name the service logged it by


class Processor(Protocol):
    """What the worker needs of ``onboard.processing.SceneProcessor`` (not imported: the
    worker knows the queue and the job, not how a scene is planned)."""

    db: ScenesDB

    def run(self, job: SceneJob) -> dict: ...


class Worker(threading.Thread):
    def __init__(self, processor: Processor, idle_s: float = 0.2):
        super().__init__(daemon=True, name="onboard-worker")
        self.processor, self.idle_s = processor, idle_s
        self._halt = threading.Event()
        self.busy = False

    def run(self) -> None:
        db = self.processor.db
        while not self._halt.is_set():
            job = db.claim_next()
            if job is None:
                self._halt.wait(self.idle_s)
                continue
            scene_id = job.scene_id
            self.busy = True
            try:
                self.processor.run(job)
                log.info("scene processed", extra={"scene_id": scene_id})
            except Exception as exc:  # noqa: BLE001 (a bad scene must not stop the worker)
                log.exception("scene failed", extra={"scene_id": scene_id})
                db.fail(scene_id, f"{type(exc).__name__}: {public(exc)}")
            finally:
                self.busy = False

    def stop(self) -> None:
        self._halt.set()

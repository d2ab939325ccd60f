"""The onboard service: REST intake, a processing worker and the downlink, in one process.

``create_app(settings)`` builds the FastAPI app (tests call it directly); starting it starts
the worker and the link client threads, stopping it stops them. Routes are thin: intake
logic is in ``onboard.intake``, processing in ``onboard.processing`` (fed by
``onboard.worker``), the link in
``onboard.link``.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from onboard import intake, startup
from onboard.bundles import Uplink
from onboard.counter import OnboardCounter
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.processing import SceneProcessor
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from onboard.upload_limit import UploadLimit
from onboard.worker import Worker
from shared.api_keys import ApiKeys, load_keys
from shared.api_page import api_page
from shared.errors import documented
from shared.model_bundle import PairFiles

log = logging.getLogger("targetfuse.onboard")


class Onboard:
    """The service's parts, wired together; ``started_with``: what the service read and
    made from its settings at start (``onboard.startup``; default: read now)."""

    def __init__(self, settings: OnboardSettings, started_with: startup.Startup | None = None):
        self.settings = settings
        start = started_with if started_with is not None else startup.start(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(settings.data_dir / "onboard.db")
        self.db = ScenesDB(self.outbox)
        intake.clear_incoming(settings)
        self.counter = OnboardCounter.shipped(settings.model, settings.models_dir,
                                              threads=settings.threads,
                                              variant=settings.precision)
        # One schedule for the budgets and the link (a replayed plan starts once).
        self.schedule = start.schedule()
        self.processor = SceneProcessor(settings, self.db, self.counter,
                                        schedule=self.schedule)
        # How scenes are cut: the intake sizes each job by the rule the worker cuts by.
        self.tile_rule = self.processor.rule
        self.worker = Worker(self.processor)
        self.bucket = TokenBucket(settings.link_rate_bytes_s, settings.link_burst_bytes)
        self.link = LinkClient(settings.ground_target, self.outbox, self.bucket,
                               self.schedule, deadline_s=settings.link_deadline_s,
                               credentials=start.link_credentials,
                               server_name=settings.ground_tls_server_name,
                               key=start.ground_key,
                               station_targets=settings.station_target_map())
        # Update bundles from the ground, applied between scenes (onboard/bundles.py).
        self.uplink = Uplink(settings, self.link, self.processor)
        if not settings.link_tls:
            log.warning("link_tls=false: the link is plaintext (the link key and tiles "
                        "cross it in clear)")
        elif settings.ground_tls_ca_file is None:
            log.warning("no ground_tls_ca_file: the link trusts the system's CAs only; a "
                        "ground that made its own CA (its tls/link-ca.pem) will be refused")
        if settings.auth and settings.ground_key_file is None:
            log.warning("no ground_key_file: a ground that authenticates its senders (the "
                        "default) will refuse this satellite's link")
        self._stop = threading.Event()
        self._link_thread = threading.Thread(target=self.link.run, args=(self._stop,),
                                             daemon=True, name="onboard-link")
        self.started = time.time()
        self.registry = CollectorRegistry()
        self.m_tiles = Counter("targetfuse_onboard_tiles", "tiles by decision", ["decision"],
                               registry=self.registry)
        self.m_scenes = Counter("targetfuse_onboard_scenes", "scenes accepted",
                                registry=self.registry)
        Gauge("targetfuse_onboard_queue_depth", "scenes waiting for processing",
              registry=self.registry).set_function(self.db.queued)
        Gauge("targetfuse_onboard_bytes_queued", "downlink bytes waiting",
              registry=self.registry).set_function(
            lambda: self.outbox.stats()["bytes_queued"])
        Gauge("targetfuse_onboard_bytes_sent", "downlink bytes acknowledged",
              registry=self.registry).set_function(lambda: self.outbox.stats()["bytes_sent"])
        Gauge("targetfuse_onboard_link_up", "1 when the last link attempt succeeded",
              registry=self.registry).set_function(lambda: float(self.link.link_up))
        Gauge("targetfuse_onboard_inference_seconds", "seconds spent planning and counting",
              registry=self.registry).set_function(lambda: self.processor.inference_seconds)

        self.processor.on_tiles = lambda names: [self.m_tiles.labels(n).inc() for n in names]

    def start(self) -> None:
        self.worker.start()
        self._link_thread.start()
        self.uplink.start()

    def stop(self) -> None:
        self.worker.stop()
        self._stop.set()
        self.uplink.stop()
        for thread in (self.worker, self._link_thread):
            if thread.ident is not None:
                thread.join(10)
        # A clean stop is not a crash: a scene still being processed goes back to the queue
        # without using up one of its attempts.
        self.db.release_unfinished()
        self.outbox.close()

    def counter_state(self) -> dict:
        """The model pair and kernels counting here, and the start-up measurement that chose
        them (absent when forced by the ``precision`` setting)."""
        choice = self.counter.kernel_choice
        return {"model": self.settings.model, "precision": self.counter.variant,
                "bundle_version": self.processor.bundle_version,
                "kernel_choice": None if choice is None else choice.as_dict()}

    def link_state(self) -> dict:
        now = time.time()
        sched = self.link.schedule
        window = sched.window(now)
        stats = self.outbox.stats()
        # Goodput: acknowledged bytes over the time the link spent sending them (connections
        # with parts to send), as a measurement on the wire gives it. Over the open time
        # since start (``link_open_s``) it also counted the seconds with nothing queued, and
        # read 0.77-0.81x of the wire's goodput at 1 MB/s.
        elapsed = max(open_seconds(sched, self.started, now), 1e-9)
        busy = self.link.busy_s
        return {"window_open": window is not None,
                "window_ends_in_s": None if window is None or sched.unlimited
                else round(window[1] - now, 3),
                "next_window_in_s": None if window is not None or sched.next_open(now) is None
                else round(sched.next_open(now) - now, 3),
                "station": None if window is None else window.station,
                "target": self.link.target_at(now),
                "rate_bytes_s": (window.rate_bytes_s if window is not None
                                 and window.rate_bytes_s else self.settings.link_rate_bytes_s),
                "link_up": self.link.link_up,
                **stats, "goodput_bytes_s": round(self.link.bytes_sent / busy, 1)
                if busy > 0 else 0.0,
                "link_busy_s": round(busy, 3), "link_open_s": round(elapsed, 3),
                "bytes_by_station": dict(self.link.bytes_by_station),
                "counter": self.counter_state(),
                "rejected_parts": self.link.rejected}


def open_seconds(schedule, t0: float, t1: float) -> float:
    """Seconds in [t0, t1] during which ``schedule`` had a contact window open."""
    if schedule.unlimited:
        return max(t1 - t0, 0.0)
    total, t = 0.0, t0
    while t < t1:
        window = schedule.current(t)
        if window is not None:
            end = min(window[1], t1)
            total, t = total + end - t, end
            continue
        nxt = schedule.next_open(t)
        if nxt is None or nxt >= t1:
            break
        t = nxt
    return total


def create_app(settings: OnboardSettings | None = None, start: bool = True) -> FastAPI:
    settings = settings or OnboardSettings()
    # What the settings name on disk, read (and the keys file made) now: a missing or bad
    # file (keys, TLS, contact plan) stops the service before it serves, named.
    started_with = startup.start(settings)
    parts: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        parts["onboard"] = Onboard(settings, started_with)
        if start:
            parts["onboard"].start()
        log.info("onboard service up: REST on http://%s:%s (OpenAPI page /docs), model pair "
                 "%r from %s, API keys file %s, link key file %s, ground target %s, data in %s",
                 settings.http_host, settings.http_port, settings.model,
                 PairFiles.of(settings.model, settings.models_dir).folder,
                 started_with.rest_keys_file or "none (auth off)",
                 settings.ground_key_file or "none", settings.ground_target, settings.data_dir,
                 extra={"http_port": settings.http_port, "model": settings.model})
        yield
        parts["onboard"].stop()

    # /docs: the OpenAPI document as a page that asks for the key (shared/api_page.py).
    app = FastAPI(title="targetfuse onboard", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The body limit: the upload, plus a MiB for the multipart envelope and the metadata; a
    # declared length above it is refused before any byte is read.
    body_limit = settings.max_upload_bytes + (1 << 20)
    app.add_middleware(UploadLimit, limit=body_limit, paths=frozenset({"/v1/scenes"}))
    # Keys read now: a missing or empty keys file stops the service before it serves.
    app.add_middleware(ApiKeys, keys=load_keys(started_with.rest_keys_file),
                       public=frozenset({"/healthz", "/readyz", "/docs"}))

    def ob() -> Onboard:
        return parts["onboard"]

    @app.exception_handler(intake.IntakeError)
    async def _intake_error(request: Request, exc: intake.IntakeError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    # The body is refused (413) as it streams past the limit, before the form parser has
    # spooled it to disk (the multipart envelope and the metadata get a MiB on top).
    @app.post("/v1/scenes", status_code=202, max_body_size=body_limit,
              responses=documented(400, 401, 409, 413, 415, 422, 429))
    def submit(request: Request, file: Annotated[UploadFile, File()],
               metadata: Annotated[str | None, Form()] = None):
        scene_id = intake.accept(settings, ob().db, file.file, metadata, ob().counter.classes,
                                 ob().tile_rule)
        ob().m_scenes.inc()
        return {"scene_id": scene_id, "status_url": str(request.url_for("scene",
                                                                         scene_id=scene_id))}

    def settle(rec: dict) -> dict:
        settled = ob().outbox.confirmation(rec["scene_id"])
        if rec["state"] == "downlinking" and settled is not None:
            # delivered: the ground confirmed it holds every part, not just acknowledged each
            rec["state"] = "delivered" if settled[0] == "confirmed" else "refused"
            rec["error"] = settled[1]
        return rec

    @app.get("/v1/scenes", responses=documented(401, 422))
    def scenes(limit: Annotated[int, Query(ge=1, le=10_000)] = 1000):
        """The scenes this satellite holds (the newest ``limit``, oldest first): state,
        classes, onboard total, tiles by decision and downlink progress; each in full at
        ``/v1/scenes/{scene_id}``."""
        rows = [settle(r) for r in ob().db.listing(limit)]
        for r in rows:
            r["downlink"] = ob().outbox.scene_progress(r["scene_id"])
        return {"scenes": rows}

    @app.get("/v1/scenes/{scene_id}", name="scene", responses=documented(401, 404))
    def scene(scene_id: str):
        rec = ob().db.get(scene_id)
        if rec is None:
            raise HTTPException(404, f"no scene {scene_id}")
        rec["downlink"] = ob().outbox.scene_progress(scene_id)
        return settle(rec)

    @app.get("/v1/link", responses=documented(401))
    def link():
        return ob().link_state()

    @app.get("/v1/uplink", responses=documented(401))
    def uplink():
        """The update bundle in force (0: the shipped files), the previous and a staged one,
        those refused and why, and the transfer: bytes held, the budget left this window."""
        return ob().uplink.state()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page():
        """The API reference page (no data: it asks for the key, then reads /openapi.json)."""
        return api_page(app.title)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz", responses=documented(503))
    def readyz():
        o = parts.get("onboard")
        ready = o is not None and (not start or o.worker.is_alive())
        if not ready:
            raise HTTPException(503, "not ready")
        return {"status": "ready", "queue": o.db.queued()}

    @app.get("/metrics", response_class=PlainTextResponse, responses=documented(401))
    def metrics():
        return Response(generate_latest(ob().registry), media_type=CONTENT_TYPE_LATEST)

    return app

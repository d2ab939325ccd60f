"""The ground service: the gRPC downlink end, the counting worker, REST and a dashboard.

``create_app(settings)`` builds the FastAPI app (tests call it directly); its lifespan opens
the store, starts the gRPC server (``ground.link_server``) and the counting worker
(``ground.counting``), and stops them again. Routes are thin over ``ground.scenes``.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from ground import map_assets, startup
from ground.link_server import create_server
from ground.scenes import scene_report
from ground.segment import make_worker, open_queue
from ground.settings import GroundSettings
from ground.stac import add_routes as add_stac_routes
from ground.store import StoreLost, open_store
from ground.uplink import uplink_report
from shared.api_keys import ApiKeys, load_keys
from shared.api_page import api_page
from shared.errors import documented
from shared.model_bundle import PairFiles, load_error_model

DASHBOARD = Path(__file__).with_name("dashboard.html")
log = logging.getLogger("targetfuse.ground")


class Ground:
    def __init__(self, settings: GroundSettings, counter=None):
        from ground.counter import GroundCounter

        self.settings = settings
        self.store = open_store(settings)
        self.counter = counter or GroundCounter.shipped(
            settings.model, settings.models_dir, threads=settings.threads,
            batch_size=settings.batch_size)
        self.error_model = load_error_model(PairFiles.of(settings.model, settings.models_dir))
        self.queue = open_queue(settings)
        gates: list = []
        uplinks: list = []
        self.server, self.grpc_port = create_server(settings, self.store, self.queue,
                                                    self.counter, gates, uplinks)
        self.gate = gates[0]
        self.uplink = uplinks[0]  # signed bundles for the satellites (ground.uplink)
        self.worker = make_worker(settings, self.store, self.counter, self.error_model,
                                  self.queue)
        self.started = time.time()
        self.registry = CollectorRegistry()
        Gauge("targetfuse_ground_scenes", "scenes known", registry=self.registry
              ).set_function(lambda: len(self.store.scene_ids()))
        Gauge("targetfuse_ground_tiles_uncounted", "received tiles not yet counted",
              registry=self.registry).set_function(self.store.count_uncounted)
        Gauge("targetfuse_ground_bytes_received", "tile bytes committed",
              registry=self.registry).set_function(self.store.bytes_received)

    def start(self) -> None:
        self.server.start()
        self.worker.start()

    def store_lost(self) -> str | None:
        """Why the store can no longer be trusted (removed or replaced under us), or None."""
        try:
            self.store.check()
        except StoreLost as exc:
            return str(exc)
        return None

    def stop(self) -> None:
        self.gate.stop()
        self.worker.stop()
        self.server.stop(2).wait()
        if self.worker.ident is not None:
            self.worker.join(10)
        if self.queue is not None:
            self.queue.close()
        self.store.close()


def create_app(settings: GroundSettings | None = None, counter=None) -> FastAPI:
    settings = settings or GroundSettings()
    parts: dict = {}
    rules = settings.aggregation()  # how every scene's total treats tiles nobody counted
    # The REST keys file, made now at first start: read below, before the service serves.
    rest_keys = startup.rest_keys_file(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        parts["ground"] = Ground(settings, counter)
        parts["ground"].start()
        app.state.grpc_port = parts["ground"].grpc_port
        log.info("ground service up: REST and dashboard on http://%s:%s (OpenAPI page /docs), "
                 "gRPC link end on %s:%s, model pair %r from %s, API keys file %s, link keys "
                 "file %s, store %s, uplink bundles in %s (signed by %s)",
                 settings.http_host, settings.http_port,
                 settings.grpc_host, parts["ground"].grpc_port, settings.model,
                 PairFiles.of(settings.model, settings.models_dir).folder,
                 rest_keys or "none (auth off)",
                 startup.sender_keys_file(settings) or "none (auth off)",
                 "PostgreSQL" if settings.database_url else settings.db_path,
                 settings.uplink_folder(), settings.uplink_key_path(),
                 extra={"http_port": settings.http_port,
                        "grpc_port": parts["ground"].grpc_port, "model": settings.model})
        yield
        parts["ground"].stop()

    # /docs: the OpenAPI document as a page that asks for the key (shared/api_page.py).
    app = FastAPI(title="targetfuse ground", lifespan=lifespan, docs_url=None, redoc_url=None)
    # Keys read now: a missing or empty keys file stops the service before it serves.
    app.add_middleware(ApiKeys, keys=load_keys(rest_keys),
                       public=frozenset({"/healthz", "/readyz", "/", "/docs",
                                         *map_assets.PUBLIC}))
    map_assets.add_routes(app)  # the dashboard's map library and script

    def g() -> Ground:
        return parts["ground"]

    def counted_classes() -> list[str] | None:
        card = getattr(g().counter, "card", None)
        return list(card.classes) if card is not None else None

    def resolve(scene: str) -> str:
        """The key of the scene a caller names: its key (``<sender>:<id>``), or its id when
        only one sender used it (409 when several did)."""
        keys = g().store.resolve(scene)
        if len(keys) > 1:
            raise HTTPException(409, f"scene id {scene} was used by {len(keys)} senders; ask "
                                f"for one of {', '.join(keys)}")
        return keys[0] if keys else scene

    app.state.resolve = resolve

    def wanted(classes: str | None) -> list[str] | None:
        """The classes asked for; a 422 for one the ground's counter does not count (as the
        onboard intake answers), or a repeated one."""
        names = [c.strip() for c in (classes or "").split(",") if c.strip()]
        known = counted_classes()
        unknown = [c for c in names if known is not None and c not in known]
        if unknown:
            raise HTTPException(422, f"classes {unknown} are not counted here; the counter "
                                     f"counts {known}")
        if len(set(names)) != len(names):
            raise HTTPException(422, "classes must not repeat")
        return names or None

    @app.get("/v1/scenes", responses=documented(401, 422))
    def scenes(classes: str | None = None):
        """Every scene; ``classes`` (comma-separated) restricts totals to those classes and
        lists only scenes counted for all of them (a class the counter does not count: 422)."""
        out, want = [], wanted(classes)
        for sid in g().store.scene_ids():
            try:
                r = scene_report(g().store, sid, classes=want, rules=rules)
            except ValueError:
                continue  # not counted for a class asked for
            row = {k: r.get(k) for k in ("scene_id", "key", "sender", "classes", "total",
                                         "onboard_total", "complete", "tiles",
                                         "tiles_received", "tiles_counted", "downlink_bytes")}
            row["by_class"] = {c: v["total"] for c, v in (r.get("by_class") or {}).items()}
            out.append(row)
        return {"scenes": out, "classes": sorted({c for r in out for c in r["classes"]})}

    @app.get("/v1/scenes/{scene_id}", responses=documented(401, 404, 409, 422))
    def scene(scene_id: str, classes: str | None = None):
        key = resolve(scene_id)
        try:
            r = scene_report(g().store, key, classes=wanted(classes), rules=rules)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if r is None:
            raise HTTPException(404, f"no scene {scene_id}")
        header = g().store.header(key)
        r["grid"] = {"rows": header.grid.rows, "cols": header.grid.cols,
                     "tile_size": header.grid.tile_size, "width": header.grid.width,
                     "height": header.grid.height}
        summary = g().store.summary(key)
        r["quicklook"] = {"bytes": len(summary.quicklook), "width": summary.quicklook_width,
                          "height": summary.quicklook_height,
                          "url": f"/v1/scenes/{key}/quicklook.jpg"} \
            if summary is not None and summary.quicklook else None
        return r

    @app.get("/v1/scenes/{scene_id}/quicklook.jpg", responses={
        200: {"content": {"image/jpeg": {}}, "description": "the scene's browse image"},
        **documented(401, 404)})
    def scene_quicklook(scene_id: str):
        """The scene's quicklook, as the satellite sent it with the summary (JPEG); 404 when
        it sent none (off, or over its share of the byte budget)."""
        summary = g().store.summary(resolve(scene_id))
        if summary is None or not summary.quicklook:
            raise HTTPException(404, f"no quicklook of scene {scene_id}")
        return Response(summary.quicklook, media_type="image/jpeg")

    # the scene as a STAC Item and GeoJSON, its totals by the same rules
    add_stac_routes(app, lambda: g().store, resolve, rules)

    @app.get("/v1/link", responses=documented(401, 422))
    def link(window_s: Annotated[float, Query(gt=0, le=366 * 86400)] = 3600.0):
        since = time.time() - window_s
        return {"bytes_by_time": [[round(t, 3), b] for t, b in g().store.link_log(since)]}

    @app.get("/v1/uplink", responses=documented(401))
    def uplink():
        """The update bundles this ground offers the satellites (``targetfuse uplink
        build``), and each satellite's bundle in force: from its newest scene's header, and
        as it reported it (with the last bundle it refused, and why) at its last contact."""
        return uplink_report(g().store, g().uplink)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page():
        """The API reference page (no data: it asks for the key, then reads /openapi.json)."""
        return api_page(app.title)

    @app.get("/healthz", responses=documented(503))
    def healthz():
        """Liveness: the process answers and its store is the one it opened (a store removed
        or replaced under it: 503, restart it); what its counting worker and link end are
        doing rides along."""
        lost = g().store_lost()
        if lost is not None:
            raise HTTPException(503, lost)
        return {"status": "ok", "grpc_port": g().grpc_port, "counting": g().worker.state(),
                "link": g().gate.state()}

    @app.get("/readyz", responses=documented(503))
    def readyz():
        """Readiness: the store is the one opened, the counting worker is alive and its
        passes finish, and the link end has a stream slot free."""
        lost = g().store_lost()
        if lost is not None:
            raise HTTPException(503, lost)
        state = g().worker.state()
        if state not in ("counting", "elsewhere"):  # elsewhere: the segment's workers
            raise HTTPException(503, f"counting worker {state}")
        link = g().gate.state()
        if link["saturated"]:
            raise HTTPException(503, f"link end saturated: {link['streams_open']} of "
                                f"{link['stream_capacity']} streams open")
        return {"status": "ready", "uncounted_tiles": g().store.count_uncounted(),
                "link": link}

    @app.get("/metrics", response_class=PlainTextResponse, responses=documented(401))
    def metrics():
        return Response(generate_latest(g().registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def dashboard():
        return DASHBOARD.read_text()

    return app

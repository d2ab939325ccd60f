"""``targetfuse onboard`` and ``targetfuse ground``: each service alone, settings from the
environment (``TARGETFUSE_ONBOARD_*`` / ``TARGETFUSE_GROUND_*``), logs as JSON lines."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in ("scene_id",):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)


def json_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("onboard", help="run the onboard service (REST intake, counting, link)")
    p.set_defaults(func=run_onboard)
    if importlib.util.find_spec("torch") is None:
        return  # the ground service needs the ground install
    g = sub.add_parser("ground", help="run the ground service (gRPC link end, REST, dashboard)")
    g.set_defaults(func=run_ground)


def run_onboard(args: argparse.Namespace) -> int:
    import uvicorn

    from onboard.app import create_app
    from onboard.settings import OnboardSettings

    json_logging()
    settings = OnboardSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0


def run_ground(args: argparse.Namespace) -> int:
    import uvicorn

    from ground.app import create_app
    from ground.settings import GroundSettings

    json_logging()
    settings = GroundSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0

"""Run the ground service alone (gRPC link end, counting worker, REST API and dashboard):
``python -m ground``, ``targetfuse-ground``, or ``targetfuse ground``. Settings come from
the environment (``TARGETFUSE_GROUND_*``, refused at start when bad); logs are JSON lines.
"""

from __future__ import annotations

import uvicorn

from ground.app import create_app
from ground.settings import GroundSettings
from shared.logs import json_logging


def main() -> int:
    json_logging()
    settings = GroundSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0

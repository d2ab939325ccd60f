"""Run the ground service alone (gRPC link end, counting worker, REST API and dashboard):
``python -m ground``, ``targetfuse-ground``, or ``targetfuse ground``. Settings come from
the environment (``TARGETFUSE_GROUND_*``, refused at start when bad); logs are JSON lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from ground.settings import GroundSettings
from shared.settings_help import service_parser

DESCRIPTION = ("Run the ground service: gRPC link end, counting worker, REST API and dashboard. "
               "Settings come from the environment (below); logs are JSON lines.")


def main(argv: Sequence[str] | None = None) -> int:
    service_parser("targetfuse-ground", DESCRIPTION, GroundSettings).parse_args(argv)
    # The service's own imports only once the command line is read (--help stays fast).
    import uvicorn

    from ground.app import create_app
    from shared.logs import json_logging

    json_logging()
    settings = GroundSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0

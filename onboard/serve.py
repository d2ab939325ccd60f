"""Run the onboard service alone (REST intake, processing worker, downlink): ``python -m onboard``,
``targetfuse-onboard``, or ``targetfuse onboard``. Settings come from the environment
(``TARGETFUSE_ONBOARD_*``, refused at start when bad); logs are JSON lines."""

from __future__ import annotations

from collections.abc import Sequence

from onboard.settings import OnboardSettings
from shared.settings_help import service_parser

DESCRIPTION = ("Run the onboard service: REST intake, processing worker, rate-limited downlink "
               "in contact windows. Settings come from the environment (below); logs are JSON "
               "lines.")


def main(argv: Sequence[str] | None = None) -> int:
    service_parser("targetfuse-onboard", DESCRIPTION, OnboardSettings).parse_args(argv)
    # The service's own imports only once the command line is read (--help stays fast).
    import uvicorn

    from onboard.app import create_app
    from shared.logs import json_logging

    json_logging()
    settings = OnboardSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0

"""Run the onboard service alone (REST intake, processing worker, downlink): ``python -m onboard``,
``targetfuse-onboard``, or ``targetfuse onboard``. Settings come from the environment
(``TARGETFUSE_ONBOARD_*``, refused at start when bad); logs are JSON lines."""

from __future__ import annotations

import uvicorn

from onboard.app import create_app
from onboard.settings import OnboardSettings
from shared.logs import json_logging


def main() -> int:
    json_logging()
    settings = OnboardSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_config=None)
    return 0

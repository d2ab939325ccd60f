"""Error texts a service may show to whoever sent the input."""

from __future__ import annotations

import re

# Two or more path components: a file or build path, not "1/2" or "km/h".
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s:'\"]+){2,}[/\\]?")


def public(exc: BaseException) -> str:
    """An error's text without file-system paths (the server's layout is nobody's business:
    readers name the temporary file, OpenCV its build tree)."""
    return _PATH.sub("<path>", str(exc))


# What each error status means on these APIs: the OpenAPI documents list, per route, every
# status it can answer (schemathesis checks they do, tests/reliability/test_openapi.py).
_MEANING = {
    400: "the upload is not a sound image (truncated, corrupt, header unreadable)",
    401: "an API key is required (Authorization: Bearer <key>, or X-API-Key)",
    404: "no such scene",
    409: "a scene with this id exists already",
    413: "too large: upload bytes, pixels, or tiles beyond the limits",
    415: "not a PNG, JPEG or GeoTIFF the counter can read",
    422: "the request's parameters or metadata are invalid",
    429: "the work queue is full: retry after Retry-After seconds",
    503: "not ready",
}


def documented(*statuses: int) -> dict[int, dict]:
    """FastAPI ``responses=`` for these error statuses, each with its meaning."""
    return {s: {"description": _MEANING[s]} for s in statuses}

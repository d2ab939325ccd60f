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
    401: "no API key given: one is required (Authorization: Bearer <key>, or X-API-Key)",
    403: "the API key given is not one of this service's keys",
    404: "no such scene",
    409: "a scene with this id exists already",
    413: "too large: upload bytes, pixels, or tiles beyond the limits",
    415: "not a PNG, JPEG or GeoTIFF the counter can read",
    422: "the request's parameters or metadata are invalid",
    429: "the work queue is full: retry after Retry-After seconds",
    503: "not ready",
}


def documented(*statuses: int) -> dict[int, dict]:
    """FastAPI ``responses=`` for these error statuses, each with its meaning (a route that
    needs a key, 401 without one, answers 403 to a wrong one)."""
    if 401 in statuses:
        statuses = (*statuses, 403)
    return {s: {"description": _MEANING[s]} for s in sorted(set(statuses))}

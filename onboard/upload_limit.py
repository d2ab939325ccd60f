"""Refuse an upload by its declared length, before a byte of its body is read.

A request whose ``Content-Length`` already exceeds the limit gets a 413 with a JSON reason at
once (FastAPI's own ``max_body_size`` still stops a body without one as it streams past the
limit, with a plain-text 413).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class UploadLimit:
    def __init__(self, app: ASGIApp, limit: int, paths: frozenset[str]):
        self.app, self.limit, self.paths = app, limit, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            declared = dict(scope.get("headers") or []).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.limit:
                response = JSONResponse(
                    {"detail": f"upload of {int(declared)} bytes exceeds the limit of "
                               f"{self.limit} bytes"}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

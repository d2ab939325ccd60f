"""API keys on a service's REST routes: ``Authorization: Bearer <key>`` or ``X-API-Key``.

Keys come from a file named in the settings (one per line; ``#`` comments), never from code.
With keys configured, every route but the public ones (health and readiness for probes, the
dashboard page, which holds no data and sends the key its URL fragment gives with every
call) answers 401 without a valid key; keys are compared in constant time. Without a file
the routes are open, as on loopback.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def load_keys(path: Path | None) -> list[bytes]:
    if path is None:
        return []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the API keys file {path}: {exc.strerror}") from None
    keys = [ln.strip().encode() for ln in lines if ln.strip() and not ln.startswith("#")]
    if not keys:
        raise ValueError(f"the API keys file {path} holds no key")
    if any(len(k) < 16 for k in keys):
        raise ValueError(f"{path}: every API key must be at least 16 characters")
    return keys


class ApiKeys:
    """ASGI middleware: refuse requests without a valid key, except on ``public`` paths."""

    def __init__(self, app: ASGIApp, keys: list[bytes], public: frozenset[str]):
        self.app, self.keys, self.public = app, keys, public

    def _valid(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key")
        auth = headers.get(b"authorization", b"")
        if given is None and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        if not given:
            return False
        return any(hmac.compare_digest(given, k) for k in self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in self.public or \
                self._valid(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"detail": "an API key is required (Authorization: Bearer "
                                           "<key>, or X-API-Key)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

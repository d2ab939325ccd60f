"""API keys on a service's REST routes: ``Authorization: Bearer <key>`` or ``X-API-Key``.

Keys come from a file named in the settings (one per line, ``<key>`` or ``<name> <key>``;
``#`` comments), never from code. Every route but the public ones (health and readiness for
probes, the dashboard page, which holds no data and sends the key its URL fragment gives with
every call) answers 401 without a valid key; keys are compared in constant time.

Authentication is on by default: a service told to authenticate and given no file makes
one (``keys_file``: one random key, readable by its owner only) beside its data and says
where, so a fresh start is never open. Only ``auth=false`` in the settings opens the routes.
The link's senders are keyed the same way (``ground.link_auth``), a name per key.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.uplink.keys import SigningKey, make_signing_key
from shared.wire.link_pki import LinkPki, make_link_pki

log = logging.getLogger("targetfuse.auth")


def load_named_keys(path: Path | None) -> dict[bytes, str]:
    """key -> name (``key-<line>`` for a line without a name); {} without a file."""
    if path is None:
        return {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the API keys file {path}: {exc.strerror}") from None
    named: dict[bytes, str] = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) > 2:
            raise ValueError(f"{path}:{number}: a line is a key, or a name and a key")
        key = words[-1].encode()
        if len(key) < 16:
            raise ValueError(f"{path}: every API key must be at least 16 characters")
        named[key] = words[0] if len(words) == 2 else f"key-{number}"
    if not named:
        raise ValueError(f"the API keys file {path} holds no key")
    return named


def load_keys(path: Path | None) -> list[bytes]:
    return list(load_named_keys(path))


def keys_file(configured: Path | None, auth: bool, default: Path, name: str) -> Path | None:
    """The keys file a service uses: the configured one; else, with ``auth`` on, ``default``,
    made with one random key named ``name`` when it does not exist; else None (open)."""
    if not auth:
        return None
    if configured is not None:
        return configured
    if not default.exists():
        default.parent.mkdir(parents=True, exist_ok=True)
        _write_private(default, f"# made at first start; add lines '<name> <key>' for more\n"
                                f"{name} {secrets.token_urlsafe(32)}\n")
        log.warning("no keys file configured: made %s with a new key (auth is on by "
                    "default; set auth=false to open the service)", default)
    return default


def _write_private(path: Path, text: str) -> None:
    """A new file only its owner can read (never overwriting one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def matching(keys: dict[bytes, str], given: bytes | None) -> str | None:
    """The name of the key ``given`` is, compared in constant time against every key."""
    found = None
    for key, name in keys.items():
        if given and hmac.compare_digest(given, key):
            found = name
    return found


def bearer(authorization: bytes | None) -> bytes | None:
    if authorization and authorization[:7].lower() == b"bearer ":
        return authorization[7:].strip()
    return None


class ApiKeys:
    """ASGI middleware: refuse requests without a valid key, except on ``public`` paths."""

    def __init__(self, app: ASGIApp, keys: list[bytes], public: frozenset[str]):
        self.app, self.public = app, public
        self.keys = dict.fromkeys(keys, "")

    def _given(self, scope: Scope) -> bytes | None:
        headers = dict(scope.get("headers") or [])
        return headers.get(b"x-api-key") or bearer(headers.get(b"authorization"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        given = self._given(scope)
        if matching(self.keys, given) is not None:
            await self.app(scope, receive, send)
            return
        if not given:  # no key at all: 401, say how to send one
            response = JSONResponse(
                {"detail": "missing API key: send one with Authorization: Bearer <key> or "
                           "X-API-Key: <key> (the service's start-up log says which file "
                           "holds its keys)"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        else:  # a key, not one of ours: 403, so the two mistakes read differently
            response = JSONResponse(
                {"detail": "wrong API key: the key given is not one of this service's keys "
                           "(the service's start-up log says which file holds them)"},
                status_code=403)
        await response(scope, receive, send)


@dataclass(frozen=True)
class Credentials:
    """A matching set of key files for one ground and its satellites, as the demo and the
    compose file's ``keys`` step make them: one operator key for both services' REST routes,
    one link key the satellite presents and the ground knows it by, the link's CA and the
    ground's certificate, and the ground's uplink signing key (its public half for the
    satellites: ``shared.uplink``)."""

    folder: Path
    rest_key: str

    @property
    def rest_file(self) -> Path:
        return self.folder / "api-keys"

    @property
    def link_file(self) -> Path:  # the ground's: "<sender> <key>" lines
        return self.folder / "link-keys"

    @property
    def satellite_file(self) -> Path:  # the satellite's own link key
        return self.folder / "satellite-key"

    @property
    def tls(self) -> LinkPki:  # the link's CA and the ground's certificate (link_pki)
        return LinkPki(self.folder)

    @property
    def uplink(self) -> SigningKey:  # the ground's Ed25519 key pair (shared.uplink.keys)
        return SigningKey(self.folder / "uplink-signing.key")

    def ground(self) -> dict:
        return {"api_keys_file": self.rest_file, "link_keys_file": self.link_file,
                "tls_cert_file": self.tls.cert, "tls_key_file": self.tls.key,
                "uplink_signing_key_file": self.uplink.private}

    def onboard(self) -> dict:
        return {"api_keys_file": self.rest_file, "ground_key_file": self.satellite_file,
                "ground_tls_ca_file": self.tls.ca,
                "uplink_public_key_file": self.uplink.public}

    def env(self) -> dict[str, str]:
        """The same as environment variables, for services started as processes (and
        ``TARGETFUSE_API_KEY``, the REST key ``lab.services.live``'s clients send by default)."""
        return {"TARGETFUSE_GROUND_API_KEYS_FILE": str(self.rest_file),
                "TARGETFUSE_GROUND_LINK_KEYS_FILE": str(self.link_file),
                "TARGETFUSE_ONBOARD_API_KEYS_FILE": str(self.rest_file),
                "TARGETFUSE_ONBOARD_GROUND_KEY_FILE": str(self.satellite_file),
                "TARGETFUSE_GROUND_TLS_CERT_FILE": str(self.tls.cert),
                "TARGETFUSE_GROUND_TLS_KEY_FILE": str(self.tls.key),
                "TARGETFUSE_ONBOARD_GROUND_TLS_CA_FILE": str(self.tls.ca),
                "TARGETFUSE_GROUND_UPLINK_SIGNING_KEY_FILE": str(self.uplink.private),
                "TARGETFUSE_ONBOARD_UPLINK_PUBLIC_KEY_FILE": str(self.uplink.public),
                "TARGETFUSE_API_KEY": self.rest_key}

    def satellite_key_file(self, n: int) -> Path:
        """Satellite ``n``'s own link key (1: ``satellite-key``, as with one satellite)."""
        return self.satellite_file if n == 1 else self.folder / f"satellite-{n}-key"

    @classmethod
    def make(cls, folder: Path, satellites: int = 1, hosts: tuple[str, ...] = ()) -> Credentials:
        """New keys in ``folder`` (kept when there already): the operator's, one link key
        per satellite (``satellite-<n>`` in the ground's file), and the link's CA and the
        ground's certificate (for loopback, the deployments' names and ``hosts``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        creds = cls(folder, "")
        links = [secrets.token_urlsafe(32) for _ in range(satellites)]
        files = [(creds.rest_file, f"operator {secrets.token_urlsafe(32)}\n"),
                 (creds.link_file, "".join(f"satellite-{n} {k}\n"
                                           for n, k in enumerate(links, 1)))]
        files += [(creds.satellite_key_file(n), f"{k}\n") for n, k in enumerate(links, 1)]
        if not creds.link_file.exists():  # a set is made whole or kept whole
            for path, _ in files[2:]:
                path.unlink(missing_ok=True)
        for path, text in files:
            if not path.exists():
                _write_private(path, text)
        make_link_pki(folder, hosts)
        make_signing_key(creds.uplink.private)
        return cls(folder, load_keys(creds.rest_file)[0].decode())


NATS_USERS = ("station", "worker")


def nats_users(folder: Path, prefix: str = "targetfuse_tiles.tiles") -> Path:
    """The ground segment's NATS users, made once in ``folder``: a password file per user
    (``nats-station-password``, ``nats-worker-password``: the stations' and workers'
    ``nats_password_file``) and ``nats-users.conf``, the server's ``authorization`` block
    (included by deploy/constellation/nats.conf): stations may publish "tile ready" work,
    workers may take it; neither anything else, and nobody without a password anything."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for user in NATS_USERS:
        path = folder / f"nats-{user}-password"
        if not path.exists():
            _write_private(path, secrets.token_urlsafe(24) + "\n")
    pw = {u: (folder / f"nats-{u}-password").read_text().strip() for u in NATS_USERS}
    js = '"$JS.API.>"'
    conf = folder / "nats-users.conf"
    if not conf.exists():
        _write_private(conf, (
            "# made by python -m shared.api_keys: the segment's NATS users\n"
            "authorization {\n  users = [\n"
            f'    {{user: station, password: "{pw["station"]}", permissions: {{'
            f'publish: ["{prefix}.>", {js}], subscribe: ["_INBOX.>"]}}}}\n'
            f'    {{user: worker, password: "{pw["worker"]}", permissions: {{'
            f'publish: ["{prefix}.>", {js}, "$JS.ACK.>"], subscribe: ["_INBOX.>"]}}}}\n'
            "  ]\n}\n"))
    return conf


if __name__ == "__main__":
    # python -m shared.api_keys FOLDER [SATELLITES [HOST ...]]: compose's keys step (HOST: more
    # names the ground's link certificate is for)
    import sys

    if len(sys.argv) < 2 or (len(sys.argv) > 2 and not sys.argv[2].isdigit()):
        sys.exit("usage: python -m shared.api_keys FOLDER [SATELLITES [HOST ...]]")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    made = Credentials.make(Path(sys.argv[1]), count, tuple(sys.argv[3:]))
    nats_users(made.folder)
    print(f"keys in {made.folder}: {made.rest_file.name}, {made.link_file.name}, "
          + ", ".join(made.satellite_key_file(n).name for n in range(1, count + 1))
          + f", nats-users.conf and its users' passwords; the link's CA {made.tls.ca.name} "
          f"and the ground's certificate {made.tls.cert.name}; the uplink signing key "
          f"{made.uplink.private.name} and its public key {made.uplink.public.name}")

"""What the ground service reads and makes from its settings when it starts.

The settings only validate (``ground.settings``): constructing them reads and writes no
file. What needs the disk is here, called by the service's factories as it starts
(``ground.app.create_app``, the link's ``ground.link_server.create_server``, the segment's
``ground.segment.open_queue``):

* the REST and link keys files: the configured ones, else (auth on) ``api-keys`` and
  ``link-keys`` beside the database, each made with a new key at first start
  (``shared.api_keys.keys_file``); None with auth off;
* the link's TLS files: the configured certificate, key and client CA, else (TLS on) a CA
  and a certificate made at first start in ``tls/`` beside the database
  (``shared.wire.link_pki``; the satellites need its ``link-ca.pem``); None: plaintext;
* the NATS password, read from its file.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from ground.settings import GroundSettings
from shared.api_keys import keys_file

log = logging.getLogger("targetfuse.ground")


def rest_keys_file(settings: GroundSettings) -> Path | None:
    """The REST keys file (made at first start when auth is on and none is configured)."""
    return keys_file(settings.api_keys_file, settings.auth,
                     settings.db_path.parent / "api-keys", "operator")


def sender_keys_file(settings: GroundSettings) -> Path | None:
    """The link keys file, ``<sender> <key>`` lines (made at first start as above)."""
    return keys_file(settings.link_keys_file, settings.auth,
                     settings.db_path.parent / "link-keys", "satellite")


def link_tls_files(settings: GroundSettings) -> tuple[Path, Path, Path | None] | None:
    """The link's certificate, key and client CA: the configured ones, else (TLS on) the
    ones made at first start in ``tls/`` beside the database; None: plaintext."""
    if not settings.link_tls:
        log.warning("link_tls=false: the link is plaintext (link keys and tiles cross it "
                    "in clear)")
        return None
    if settings.tls_cert_file is not None:
        return settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    from shared.wire.link_pki import make_link_pki

    hosts = tuple(h for h in (settings.grpc_host, socket.gethostname())
                  if h not in ("0.0.0.0", "::", ""))
    pki = make_link_pki(settings.db_path.parent / "tls", hosts)
    return pki.cert, pki.key, None


def nats_password(settings: GroundSettings) -> str | None:
    """The segment's NATS password, from ``nats_password_file`` (None without one)."""
    if settings.nats_password_file is None:
        return None
    try:
        return settings.nats_password_file.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the NATS password file: {exc.strerror}") from None

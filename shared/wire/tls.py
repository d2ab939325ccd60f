"""TLS for the link, from certificate files named in the settings (never from code).

The ground presents a certificate and key; given a client CA it also requires every sender to
present a certificate that CA signed (mutual TLS). The onboard side trusts the CA file it is
given, else the system's CAs (and presents its own certificate and key for mutual TLS). TLS is
the default on both sides: a ground given no files makes its own (``shared.wire.link_pki``);
plaintext only where the settings say ``link_tls=false``.
"""

from __future__ import annotations

from pathlib import Path

import grpc


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read TLS file {path}: {exc.strerror}") from None


def check_pair(cert: Path | None, key: Path | None, what: str) -> None:
    if (cert is None) != (key is None):
        raise ValueError(f"{what}: a TLS certificate and its key go together")


def server_credentials(cert: Path | None, key: Path | None,
                       client_ca: Path | None = None) -> grpc.ServerCredentials | None:
    """None without a certificate (plaintext); mutual TLS when ``client_ca`` is given."""
    if cert is None:
        if client_ca is not None:
            raise ValueError("a client CA (mutual TLS) needs the server's own certificate")
        return None
    return grpc.ssl_server_credentials([(_read(key), _read(cert))],
                                       root_certificates=_read(client_ca),
                                       require_client_auth=client_ca is not None)


def channel_credentials(ca: Path | None, cert: Path | None = None, key: Path | None = None,
                        plaintext: bool = False) -> grpc.ChannelCredentials | None:
    """TLS trusting ``ca`` (None: the system's CAs), with the client's own pair for mutual
    TLS when given; None (plaintext) only when asked for, and then with no TLS file."""
    if plaintext:
        if ca is not None or cert is not None:
            raise ValueError("plaintext (link_tls=false) with TLS files named: drop one")
        return None
    if cert is not None and ca is None:
        raise ValueError("a client certificate needs the CA that signed the ground's")
    return grpc.ssl_channel_credentials(root_certificates=_read(ca), private_key=_read(key),
                                        certificate_chain=_read(cert))

"""The link's own certificates, made once when a deployment names none (TLS by default).

``make_link_pki`` makes, in one folder, a CA (``link-ca.pem``, its key ``link-ca.key``) and
the ground's certificate signed by it (``link-ground.pem``, ``link-ground.key``) for the
names the ground is reached by: loopback, the names compose and the Kubernetes manifests give
the link end, and any given. Every file is readable by its owner only; an existing set is
kept whole (a half-made one is made again whole), so a restart keeps the CA the satellites
were given. Keys are ECDSA P-256: made in milliseconds, and every gRPC build speaks it.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from shared.private_file import write_private

log = logging.getLogger("targetfuse.tls")

# The names the link end has in this project's deployments: loopback (the demo, the fault
# suite, tests), the compose services (``ground``; the constellation's ``station-1``,
# ``station-2``) and the Kubernetes Service ``station`` in namespace ``targetfuse``.
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1", "ground", "station-1", "station-2",
                 "station", "station.targetfuse", "station.targetfuse.svc",
                 "station.targetfuse.svc.cluster.local")
VALID_DAYS = 3650  # a deployment's own CA, replaced by naming files, not by expiry


@dataclass(frozen=True)
class LinkPki:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "link-ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "link-ca.key"

    @property
    def cert(self) -> Path:
        return self.folder / "link-ground.pem"

    @property
    def key(self) -> Path:
        return self.folder / "link-ground.key"

    def files(self) -> tuple[Path, ...]:
        return self.ca, self.ca_key, self.cert, self.key


def _san(host: str):
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _certificate(subject: str, issuer: str, public_key, signer, ca: bool, hosts=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(public_key).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                        critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]),
                            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
    return b.sign(signer, hashes.SHA256())


def make_link_pki(folder: Path, hosts: tuple[str, ...] = ()) -> LinkPki:
    """The CA and the ground's certificate in ``folder``: kept when all there, else made
    (for ``DEFAULT_HOSTS`` and ``hosts``) and their paths logged."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pki = LinkPki(Path(folder))
    if all(p.exists() for p in pki.files()):
        return pki
    names = list(dict.fromkeys([*DEFAULT_HOSTS, *(h for h in hosts if h)]))
    bad = [h for h in names if not h or any(c.isspace() for c in h)]
    if bad:
        raise ValueError(f"a link certificate's host name may not be empty or hold spaces: "
                         f"{bad[0]!r}")
    pki.folder.mkdir(parents=True, exist_ok=True)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("targetfuse link CA", "targetfuse link CA", ca_key.public_key(), ca_key,
                      ca=True)
    cert = _certificate("targetfuse ground", "targetfuse link CA", key.public_key(), ca_key,
                        ca=False, hosts=names)

    def private(k) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    pem = serialization.Encoding.PEM
    for path, data in ((pki.ca_key, private(ca_key)), (pki.key, private(key)),
                       (pki.cert, cert.public_bytes(pem)), (pki.ca, ca.public_bytes(pem))):
        write_private(path, data)
    log.warning("no link certificates configured: made a CA %s (give it to the satellites: "
                "their ground_tls_ca_file) and the ground's certificate %s for %s; the link "
                "runs TLS (link_tls=false for plaintext)", pki.ca, pki.cert, ", ".join(names))
    return pki

"""The ground's Ed25519 key that signs uplink bundles, made once when a deployment names none.

``make_signing_key(path)`` writes the private key (PKCS#8 PEM) at ``path`` and its public key
(SubjectPublicKeyInfo PEM) beside it with the suffix ``.pub``, both readable by their owner
only, and logs where; an existing pair is kept (a half-made one is made again whole), so a
restart keeps the key the satellites were given. The satellites hold only the public key
(their ``uplink_public_key_file``); the private key never leaves the ground.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from shared.private_file import write_private

log = logging.getLogger("targetfuse.uplink")


@dataclass(frozen=True)
class SigningKey:
    private: Path

    @property
    def public(self) -> Path:
        return self.private.with_name(self.private.name.removesuffix(".key") + ".pub")

    def files(self) -> tuple[Path, Path]:
        return self.private, self.public


def make_signing_key(private: Path) -> SigningKey:
    """The key pair at ``private`` (and ``<stem>.pub``): kept when both are there, else made
    and their paths logged."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = SigningKey(Path(private))
    if all(p.exists() for p in key.files()):
        return key
    key.private.parent.mkdir(parents=True, exist_ok=True)
    made = Ed25519PrivateKey.generate()
    write_private(key.private, made.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public = made.public_key()
    write_private(key.public, public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    log.warning("no uplink signing key configured: made %s (the ground's; keep it there) and "
                "its public key %s (give it to the satellites: their uplink_public_key_file), "
                "fingerprint %s", key.private, key.public, fingerprint(public))
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc.strerror}") from None


def load_private_key(path: Path):
    """The Ed25519 private key in a PEM file; ValueError when it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_read(path, "uplink signing key"), None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: the uplink signing key must be Ed25519")
    return key


def load_public_key(path: Path):
    """The Ed25519 public key in a PEM file; ValueError when it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(_read(path, "uplink public key"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: the uplink public key must be Ed25519")
    return key


def fingerprint(public_key) -> str:
    """A short name for a public key in logs: the first 16 hex digits of the sha256 of its
    raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]

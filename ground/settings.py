"""The ground service's settings: one typed class, read from ``TARGETFUSE_GROUND_*``
environment variables (or given directly), validated when built."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.model_card import MODELS_DIR
from shared.wire.tls import check_pair


class GroundSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TARGETFUSE_GROUND_", extra="forbid")

    grpc_host: str = "127.0.0.1"  # loopback unless told: compose binds what it needs
    grpc_port: int = Field(50051, ge=0, le=65535, description="0: any free port")
    http_host: str = "127.0.0.1"  # loopback unless told: compose binds what it needs
    http_port: int = Field(8081, ge=0, le=65535)
    db_path: Path = Path("out/ground/ground.db")
    model: str = "objects"
    models_dir: Path = MODELS_DIR
    # One torch thread unless told: with two, counting ran 4.7x slower than with one when
    # the other core was busy (measured on a 2-core host), and gained little when idle.
    threads: int = Field(1, ge=1, le=256, description="torch threads for the deep counter")
    batch_size: int = Field(16, ge=1, le=1024)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    grpc_workers: int = Field(8, ge=1, le=256)
    # TLS on the link (shared/wire/tls.py): the ground's certificate and key; with a client
    # CA, senders must present a certificate it signed (mutual TLS). None: plaintext.
    # REST API keys (shared/api_keys.py): a file of keys, one per line; None: open routes.
    api_keys_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _tls(self) -> GroundSettings:
        check_pair(self.tls_cert_file, self.tls_key_file, "ground")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("ground: a client CA (mutual TLS) needs the ground's certificate")
        return self

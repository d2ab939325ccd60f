"""The ground service's settings: one typed class, read from ``TARGETFUSE_GROUND_*``
environment variables (or given directly), validated when built.

They only validate: building them checks each value and that the values fit together, and
reads and writes no file (the keys files, TLS files and NATS password are read, or made at
first start, when the service starts: ``ground.startup``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.model_bundle import MODELS_DIR
from shared.pipeline.aggregation import AggregationRules, Discarded, Uncounted
from shared.wire.tls import check_pair


class GroundSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TARGETFUSE_GROUND_", extra="forbid")

    grpc_host: str = "127.0.0.1"  # loopback unless told: compose binds what it needs
    grpc_port: int = Field(50051, ge=0, le=65535, description="0: any free port")
    http_host: str = "127.0.0.1"  # loopback unless told: compose binds what it needs
    http_port: int = Field(8081, ge=0, le=65535)
    db_path: Path = Path("out/ground/ground.db")
    # The ground segment's shared store: a PostgreSQL URL (postgresql://user@host/db) for
    # several stations and workers on one database; None: the SQLite file at db_path.
    database_url: str | None = None
    # The segment's counting queue: a NATS URL (nats://host:4222, JetStream on) makes this
    # station announce each committed tile there, and its counting worker (unless
    # count_here is off) pull work from it with the others; None: the embedded worker.
    nats_url: str | None = None
    nats_stream: str = Field("TARGETFUSE_TILES", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The segment's NATS user (stations and workers each have one, allowed only their
    # subjects: deploy/constellation/nats.conf) and the file holding its password.
    nats_user: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_password_file: Path | None = None
    count_here: bool = True
    # A tile a worker fetched and did not acknowledge (it died mid-count) goes to another
    # after this many seconds; after nats_max_deliver deliveries it is quarantined.
    nats_ack_wait_s: float = Field(60.0, ge=1.0, le=3600.0)
    nats_max_deliver: int = Field(5, ge=1, le=100)
    model: str = "objects"
    models_dir: Path = MODELS_DIR
    # One torch thread unless told: with two, counting ran 4.7x slower than with one when
    # the other core was busy (measured on a 2-core host), and gained little when idle.
    threads: int = Field(1, ge=1, le=256, description="torch threads for the deep counter")
    batch_size: int = Field(16, ge=1, le=1024)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)
    grpc_workers: int = Field(8, ge=3, le=256)
    # Send streams one sender may hold open at once (more are refused RESOURCE_EXHAUSTED),
    # and how long a stream may sit without a part before it is cancelled: no key can take
    # every server thread. All streams together get grpc_workers - 2 threads.
    link_streams_per_sender: int = Field(2, ge=1, le=64)
    link_idle_s: float = Field(30.0, ge=1.0, le=3600.0)
    # Authentication (shared/api_keys.py), on unless told: REST routes need one of the keys
    # of api_keys_file, the link one of link_keys_file's ("<sender> <key>" lines: the name
    # owns the scenes it sends). A file not given is made beside the database at first start.
    auth: bool = True
    api_keys_file: Path | None = None
    link_keys_file: Path | None = None
    # TLS on the link (shared/wire/tls.py), on unless told: the ground's certificate and
    # key; with a client CA, senders must present a certificate it signed (mutual TLS). Not
    # given: a CA and a certificate made beside the database at first start
    # (shared/wire/link_pki.py; the satellites need its link-ca.pem). link_tls=false: plaintext.
    link_tls: bool = True
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # How a scene's total treats the tiles the satellite did not count for it
    # (shared/pipeline/aggregation.py): a discarded tile (below conf_p) adds its onboard
    # count ("onboard") or nothing ("zero"); an uncounted one (energy ran out, not sent) the
    # mean of the measured tiles of its context ("context") or nothing ("zero"). An
    # experiment's choice is its pipeline.json's "discarded" and "uncounted" (the satellite
    # plans the same under either: they are the ground's estimate, not sent with the scene).
    # Applied whenever a scene is read: a change re-reports every stored scene.
    discarded_tiles: Discarded = "onboard"
    uncounted_tiles: Uncounted = "context"  # "context" or "zero", as said above

    # The uplink (ground/uplink.py): signed update bundles served to the satellites from
    # uplink_dir (None: "uplink" beside the database; `targetfuse uplink build` writes
    # there), signed with the Ed25519 key uplink_signing_key_file (None: made at first start
    # beside the database, uplink-signing.key, with the public key the satellites need,
    # uplink-signing.pub).
    uplink_dir: Path | None = None
    uplink_signing_key_file: Path | None = None

    def uplink_folder(self) -> Path:
        return self.uplink_dir or self.db_path.parent / "uplink"

    def uplink_key_path(self) -> Path:
        return self.uplink_signing_key_file or self.db_path.parent / "uplink-signing.key"

    def aggregation(self) -> AggregationRules:
        """The rules every scene's total (report, GeoJSON, STAC Item) is aggregated by."""
        return AggregationRules(self.discarded_tiles, self.uncounted_tiles)

    @model_validator(mode="after")
    def _tls(self) -> GroundSettings:
        check_pair(self.tls_cert_file, self.tls_key_file, "ground")
        if not self.link_tls and self.tls_cert_file is not None:
            raise ValueError("ground: link_tls=false (plaintext) with TLS files named: "
                             "drop one")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("ground: a client CA (mutual TLS) needs the ground's certificate")
        return self

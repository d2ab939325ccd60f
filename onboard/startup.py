"""What the onboard service reads and makes from its settings when it starts.

The settings only validate (``onboard.settings``): constructing them reads no contact plan
and writes no file. What needs the disk is here, done once by the service factory
(``onboard.app.create_app``) before the service serves, so a missing or bad file stops the
start, named, and the worker and the link share what was read:

* the REST keys file: the configured one, else (auth on) ``data_dir/api-keys``, made with a
  new key at first start (``shared.api_keys.keys_file``); None with auth off;
* the link key: the last key of ``ground_key_file``, None without one;
* the link's channel credentials: TLS trusting ``ground_tls_ca_file`` (else the system's
  CAs), with this satellite's own pair for mutual TLS; None (plaintext) only with
  ``link_tls=false``;
* this satellite's windows of the contact plan, read and checked (``onboard.contact_plan``);
  the schedule is made from them when the service's parts are (``Startup.schedule``: a
  replayed plan starts its lead from then, as it always did).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from onboard.contact_plan import PlanWindows, contact_schedule, read_windows
from onboard.link.windows import ContactSchedule
from onboard.settings import OnboardSettings
from shared.api_keys import keys_file, load_keys
from shared.wire.tls import channel_credentials


@dataclass(frozen=True)
class Startup:
    """What the service read and made at start."""

    settings: OnboardSettings
    rest_keys_file: Path | None
    ground_key: bytes | None
    link_credentials: grpc.ChannelCredentials | None
    plan: PlanWindows | None  # None: no contact plan

    def schedule(self, now: float | None = None) -> ContactSchedule:
        """The contact schedule (a replayed plan replayed from ``now``, default now)."""
        return contact_schedule(self.settings, now, self.plan)


def rest_keys_file(settings: OnboardSettings) -> Path | None:
    """The REST keys file (made at first start when auth is on and none is configured)."""
    return keys_file(settings.api_keys_file, settings.auth, settings.data_dir / "api-keys",
                     "operator")


def ground_key(settings: OnboardSettings) -> bytes | None:
    """The key the link presents (the file's last key), None without a file."""
    keys = load_keys(settings.ground_key_file)
    return keys[-1] if keys else None


def link_credentials(settings: OnboardSettings) -> grpc.ChannelCredentials | None:
    """The link's gRPC channel credentials: TLS trusting ground_tls_ca_file (else the
    system's CAs); None (plaintext) only with link_tls=false."""
    return channel_credentials(settings.ground_tls_ca_file, settings.tls_cert_file,
                               settings.tls_key_file, plaintext=not settings.link_tls)


def start(settings: OnboardSettings) -> Startup:
    """Everything the service reads and makes from ``settings`` at start; a ValueError (or
    OSError) naming the file or setting when one is missing or bad."""
    plan = read_windows(settings) if settings.contact_plan_file is not None else None
    started = Startup(settings, rest_keys_file(settings), ground_key(settings),
                      link_credentials(settings), plan)
    started.schedule()  # explicit windows out of order fail here too, not when serving
    return started

"""Settings only validate: building either service's settings reads no file named in them
(the pipeline configuration aside: a few hundred bytes, refused as a bad setting) and writes
none; the service factory reads and makes them at start, and says which one is bad."""

from __future__ import annotations

import builtins
import io
import os
import pathlib

import pytest

from ground.settings import GroundSettings
from onboard.settings import OnboardSettings


@pytest.fixture
def no_file_access(monkeypatch):
    """Any open, read or write of a file fails the test (stat and exists are allowed)."""
    def refused(*args, **kwargs):
        raise AssertionError(f"file access while building settings: {args[:2]}")

    for owner, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "makedirs"),
                        (os, "mkdir"), (pathlib.Path, "open"), (pathlib.Path, "read_text"),
                        (pathlib.Path, "read_bytes"), (pathlib.Path, "write_text"),
                        (pathlib.Path, "write_bytes"), (pathlib.Path, "mkdir"),
                        (pathlib.Path, "touch")):
        monkeypatch.setattr(owner, name, refused)


def test_building_the_onboard_settings_touches_no_file(tmp_path, no_file_access):
    OnboardSettings(data_dir=tmp_path / "data", contact_plan_file=tmp_path / "plan.json",
                    contact_plan_satellite="A", contact_plan_replay_lead_s=10.0,
                    ground_key_file=tmp_path / "key", ground_tls_ca_file=tmp_path / "ca.pem",
                    tls_cert_file=tmp_path / "c.pem", tls_key_file=tmp_path / "k.pem")
    OnboardSettings(data_dir=tmp_path / "data")  # auth on, no keys file named


def test_building_the_ground_settings_touches_no_file(tmp_path, no_file_access):
    GroundSettings(db_path=tmp_path / "g" / "ground.db",
                   nats_password_file=tmp_path / "password")  # auth and TLS on, nothing named


def test_nothing_is_made_until_the_service_starts(tmp_path):
    from onboard import startup as onboard_start
    from onboard.app import create_app

    settings = OnboardSettings(data_dir=tmp_path / "o", ground_target="127.0.0.1:1")
    assert not (tmp_path / "o").exists()
    create_app(settings, start=False)  # the factory makes the keys file: read before serving
    assert (tmp_path / "o" / "api-keys").is_file()
    assert onboard_start.start(settings).rest_keys_file == tmp_path / "o" / "api-keys"

    from ground import startup as ground_start

    ground = GroundSettings(db_path=tmp_path / "g" / "ground.db")
    assert not (tmp_path / "g").exists()
    assert ground_start.rest_keys_file(ground) == tmp_path / "g" / "api-keys"
    assert ground_start.sender_keys_file(ground) == tmp_path / "g" / "link-keys"


@pytest.mark.parametrize("named", ["ground_key_file", "api_keys_file"])
def test_a_missing_keys_file_stops_the_onboard_factory_naming_it(tmp_path, named):
    from onboard.app import create_app

    settings = OnboardSettings(data_dir=tmp_path, **{named: tmp_path / "missing"})
    with pytest.raises(ValueError, match="cannot read the API keys file .*missing: No such"):
        create_app(settings, start=False)


def test_a_missing_nats_password_file_is_refused_when_the_queue_opens(tmp_path):
    from ground.startup import nats_password

    settings = GroundSettings(db_path=tmp_path / "g.db", nats_password_file=tmp_path / "pw")
    with pytest.raises(ValueError, match="cannot read the NATS password file: No such file"):
        nats_password(settings)
    (tmp_path / "pw").write_text("s3cret\n")
    assert nats_password(settings) == "s3cret"

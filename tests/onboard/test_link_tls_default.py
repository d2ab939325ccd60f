"""TLS on the link by default (issue 26, finding 10): a ground given no certificates makes its
own CA and certificate at first start (owner-only files), serves TLS only, and a satellite
given that CA gets through while a plaintext one, or one trusting only the system's CAs, is
refused. Plaintext only where the settings say ``link_tls=false``."""

from __future__ import annotations

import stat

import grpc
import pytest

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.startup import link_tls_files
from ground.store import SQLiteStore
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.settings import OnboardSettings
from onboard.startup import link_credentials
from shared.wire import link_pb2
from shared.wire.link_pki import LinkPki


def _box(tmp_path, name):
    box = Outbox(tmp_path / f"{name}.db")
    box.put_scene([link_pb2.DownlinkMessage(header=link_pb2.SceneHeader(
        scene_id=name, grid=link_pb2.TileGrid(width=256, height=256, tile_size=256, rows=1,
                                              cols=1)))])
    return box


def _serve(settings):
    store = SQLiteStore(settings.db_path)
    server, port = create_server(settings, store)
    server.start()
    return server, store, port


def _send(tmp_path, port, name, credentials):
    return LinkClient(f"127.0.0.1:{port}", _box(tmp_path, name), TokenBucket(1e7),
                      deadline_s=5, credentials=credentials).drain_once()


def test_a_ground_given_no_certificates_makes_its_own_and_speaks_only_tls(tmp_path):
    settings = GroundSettings(auth=False, grpc_host="127.0.0.1", grpc_port=0,
                              db_path=tmp_path / "ground" / "ground.db")
    server, store, port = _serve(settings)
    try:
        pki = LinkPki(tmp_path / "ground" / "tls")
        for path in pki.files():  # made at first start, readable by their owner only
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        with pytest.raises(grpc.RpcError):  # a plaintext sender is refused
            _send(tmp_path, port, "plain", None)
        with pytest.raises(grpc.RpcError):  # so is one trusting only the system's CAs
            _send(tmp_path, port, "system",
                  link_credentials(OnboardSettings(auth=False)))
        satellite = OnboardSettings(auth=False, ground_tls_ca_file=pki.ca)
        assert _send(tmp_path, port, "trusted", link_credentials(satellite)) == 1
        assert store.header("trusted") is not None and store.header("plain") is None
    finally:
        server.stop(None).wait()
        store.close()
    before = {p: p.read_bytes() for p in pki.files()}
    link_tls_files(GroundSettings(auth=False, db_path=settings.db_path))
    assert {p: p.read_bytes() for p in pki.files()} == before  # kept: satellites trust it


def test_plaintext_only_with_the_explicit_setting(tmp_path):
    assert OnboardSettings().link_tls and GroundSettings().link_tls  # TLS unless told
    assert link_credentials(OnboardSettings(auth=False)) is not None
    settings = GroundSettings(auth=False, link_tls=False, grpc_host="127.0.0.1", grpc_port=0,
                              db_path=tmp_path / "ground" / "ground.db")
    server, store, port = _serve(settings)
    try:
        assert not (tmp_path / "ground" / "tls").exists()
        plain = link_credentials(OnboardSettings(auth=False, link_tls=False))
        assert plain is None and _send(tmp_path, port, "plain", plain) == 1
    finally:
        server.stop(None).wait()
        store.close()
    with pytest.raises(ValueError, match="link_tls=false"):
        OnboardSettings(link_tls=False, ground_tls_ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match="link_tls=false"):
        GroundSettings(link_tls=False, tls_cert_file=tmp_path / "c", tls_key_file=tmp_path / "k")

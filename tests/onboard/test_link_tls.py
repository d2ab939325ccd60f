"""The link over TLS and mutual TLS on loopback, with certificates made here (cryptography)."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.settings import OnboardSettings
from shared.wire import link_pb2
from shared.wire.tls import channel_credentials


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, key, signer, ca: bool, sans=()):
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(signer, hashes.SHA256())


def _write(folder, name, key, cert):
    (folder / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder / f"{name}.pem", folder / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, the ground's certificate (localhost, 127.0.0.1) and a satellite's."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("targetfuse test CA", "targetfuse test CA", ca_key, ca_key, ca=True)
    _write(folder, "ca", ca_key, ca)
    out = {"ca": folder / "ca.pem"}
    for name, sans in (("ground", (x509.DNSName("localhost"),
                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1")))),
                       ("sat", (x509.DNSName("sat-1"),))):
        key = ec.generate_private_key(ec.SECP256R1())
        out[name] = _write(folder, name, key, _cert(name, "targetfuse test CA", key, ca_key,
                                                    ca=False, sans=sans))
    return out


def _ground(tmp_path, pki, mutual: bool):
    cert, key = pki["ground"]
    settings = GroundSettings(auth=False,
                              grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              tls_cert_file=cert, tls_key_file=key,
                              tls_client_ca_file=pki["ca"] if mutual else None)
    store = SQLiteStore(settings.db_path)
    server, port = create_server(settings, store)
    server.start()
    return server, store, port


def _header_box(tmp_path, name="o.db"):
    box = Outbox(tmp_path / name)
    box.put_scene([link_pb2.DownlinkMessage(header=link_pb2.SceneHeader(
        scene_id="tls", grid=link_pb2.TileGrid(width=256, height=256, tile_size=256, rows=1,
                                               cols=1)))])
    return box


def test_the_link_runs_over_tls_and_refuses_plaintext(tmp_path, pki):
    server, store, port = _ground(tmp_path, pki, mutual=False)
    try:
        creds = channel_credentials(pki["ca"])
        client = LinkClient(f"127.0.0.1:{port}", _header_box(tmp_path), TokenBucket(1e7),
                            deadline_s=10, credentials=creds)
        assert client.drain_once() == 1 and store.header("tls") is not None
        plain = LinkClient(f"127.0.0.1:{port}", _header_box(tmp_path, "p.db"),
                           TokenBucket(1e7), deadline_s=3)
        with pytest.raises(grpc.RpcError):
            plain.drain_once()
    finally:
        server.stop(None).wait()
        store.close()


def test_mutual_tls_refuses_a_sender_without_a_certificate(tmp_path, pki):
    server, store, port = _ground(tmp_path, pki, mutual=True)
    try:
        cert, key = pki["sat"]
        good = LinkClient(f"127.0.0.1:{port}", _header_box(tmp_path), TokenBucket(1e7),
                          deadline_s=10, credentials=channel_credentials(pki["ca"], cert, key))
        assert good.drain_once() == 1
        anonymous = LinkClient(f"127.0.0.1:{port}", _header_box(tmp_path, "a.db"),
                               TokenBucket(1e7), deadline_s=3,
                               credentials=channel_credentials(pki["ca"]))
        with pytest.raises(grpc.RpcError):
            anonymous.drain_once()
    finally:
        server.stop(None).wait()
        store.close()


def test_tls_settings_come_in_pairs(tmp_path, pki):
    cert, key = pki["ground"]
    with pytest.raises(ValueError, match="go together"):
        GroundSettings(tls_cert_file=cert)
    with pytest.raises(ValueError, match="mutual TLS"):
        GroundSettings(tls_client_ca_file=pki["ca"])
    with pytest.raises(ValueError, match="ground's CA"):
        OnboardSettings(tls_cert_file=cert, tls_key_file=key)
    with pytest.raises(ValueError, match="cannot read TLS file"):
        channel_credentials(tmp_path / "missing.pem")

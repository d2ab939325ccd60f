"""The link's own CA and the ground's certificate (shared/wire/link_pki.py), and the key sets
the demo, the compose file's keys step and the fault suite make with them."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys

import pytest
from cryptography import x509

from shared.api_keys import Credentials
from shared.wire.link_pki import DEFAULT_HOSTS, make_link_pki


def test_the_ground_certificate_is_signed_by_the_ca_for_every_name(tmp_path):
    pki = make_link_pki(tmp_path / "tls", ("ground.example", "192.0.2.1"))
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(pki.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "ground", "station-1", "station-2", "ground.example"} <= names
    assert {"127.0.0.1", "::1", "192.0.2.1"} <= ips
    assert all(h in names or ipaddress.ip_address(h) for h in DEFAULT_HOSTS)
    for path in pki.files():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_half_made_set_is_made_again_whole(tmp_path):
    pki = make_link_pki(tmp_path)
    old_ca = pki.ca.read_bytes()
    pki.key.unlink()
    make_link_pki(tmp_path)
    assert pki.key.exists() and pki.ca.read_bytes() != old_ca  # a ca matching the new key
    with pytest.raises(ValueError, match="host name"):
        make_link_pki(tmp_path / "other", ("bad name",))


def test_a_key_set_holds_the_link_tls_both_sides_use(tmp_path):
    creds = Credentials.make(tmp_path / "keys")
    assert creds.ground()["tls_cert_file"] == creds.tls.cert
    assert creds.onboard()["ground_tls_ca_file"] == creds.tls.ca
    env = creds.env()
    assert env["TARGETFUSE_ONBOARD_GROUND_TLS_CA_FILE"] == str(creds.tls.ca)
    assert env["TARGETFUSE_GROUND_TLS_CERT_FILE"] == str(creds.tls.cert)


def test_the_keys_step_makes_the_link_certificates_for_more_names(tmp_path):
    out = subprocess.run([sys.executable, "-m", "shared.api_keys", str(tmp_path), "2",
                          "ground.example"], capture_output=True, text=True, check=True)
    assert "link-ca.pem" in out.stdout
    cert = x509.load_pem_x509_certificate((tmp_path / "link-ground.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ground.example" in san.get_values_for_type(x509.DNSName)
    bad = subprocess.run([sys.executable, "-m", "shared.api_keys", str(tmp_path), "two"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr

"""Update bundles: signed by the ground, verified onboard; a forged, altered or malformed one
is refused with the reason."""

from __future__ import annotations

import contextlib
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import limits
from shared.api_keys import Credentials
from shared.model_bundle import PairFiles
from shared.uplink.bundle import (
    BundleError,
    Manifest,
    build,
    open_bundle,
    read_error_model,
    read_thresholds,
    sha256_hex,
    sign,
)
from shared.uplink.keys import load_private_key, load_public_key, make_signing_key
from shared.wire import link_pb2

MODEL_SHA = "ab" * 32


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def files():
    pair = PairFiles.of("objects")
    return {"confidence": (pair.folder / "confidence.json").read_bytes(),
            "error_model": pair.error_model.read_bytes(),
            "thresholds": json.dumps({"conf_p": 0.05, "conf_q": 0.8}).encode()}


def _build(files, key, **kw):
    return build(files, version=kw.pop("version", 3), model="objects",
                 model_sha256=MODEL_SHA, private_key=key, **kw)


def test_a_bundle_signed_by_the_ground_opens_with_its_public_key(files, key):
    blob = _build(files, key, satellites=("satellite-1",), note="refit on pass 7")
    opened = open_bundle(blob, key.public_key())
    m = opened.manifest
    assert (m.version, m.model, m.model_sha256, m.satellites, m.note) == \
        (3, "objects", MODEL_SHA, ("satellite-1",), "refit on pass 7")
    assert opened.files == files
    assert {f.role: (f.size, f.sha256) for f in m.files} == \
        {r: (len(d), sha256_hex(d)) for r, d in files.items()}
    assert m.for_sender("satellite-1") and not m.for_sender("satellite-2")


def test_a_forged_signature_is_refused(files, key):
    forger = Ed25519PrivateKey.generate()
    blob = _build(files, forger)  # well formed, signed by another key
    with pytest.raises(BundleError, match="signature does not verify"):
        open_bundle(blob, key.public_key())


def test_a_manifest_altered_after_signing_is_refused(files, key):
    msg = link_pb2.UpdateBundle.FromString(_build(files, key))
    raw = json.loads(msg.manifest)
    raw["version"] = 99  # a replay dressed up as newer
    msg.manifest = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(BundleError, match="signature does not verify"):
        open_bundle(msg.SerializeToString(), key.public_key())


def test_a_corrupted_file_is_refused_by_its_sha256(files, key):
    msg = link_pb2.UpdateBundle.FromString(_build(files, key))
    f = next(f for f in msg.files if f.name == "error_model.json")
    data = bytearray(f.data)
    data[10] ^= 0x01  # one bit flipped, same size
    f.data = bytes(data)
    with pytest.raises(BundleError, match="error_model.json: sha256 does not match"):
        open_bundle(msg.SerializeToString(), key.public_key())


def test_missing_extra_and_truncated_files_are_refused(files, key):
    def variant(change):
        msg = link_pb2.UpdateBundle.FromString(_build(files, key))
        change(msg)
        return msg.SerializeToString()

    with pytest.raises(BundleError, match="not the manifest's"):
        open_bundle(variant(lambda m: m.files.pop()), key.public_key())
    with pytest.raises(BundleError, match="not the manifest's"):
        open_bundle(variant(lambda m: m.files.add(name="extra.bin", data=b"x")),
                    key.public_key())
    with pytest.raises(BundleError, match="bytes, the manifest says"):
        open_bundle(variant(lambda m: setattr(m.files[0], "data", m.files[0].data[:-5])),
                    key.public_key())
    blob = _build(files, key)
    with pytest.raises(BundleError):
        open_bundle(blob[: len(blob) // 2], key.public_key())  # a truncated transfer
    with pytest.raises(BundleError):
        open_bundle(b"\xff" * 100, key.public_key())


def _signed(manifest: dict, key) -> bytes:
    data = json.dumps(manifest).encode()
    return link_pb2.UpdateBundle(manifest=data, signature=sign(data, key)).SerializeToString()


@pytest.mark.parametrize("change,message", [
    ({"version": 0}, "version must be an integer"),
    ({"version": limits.MAX_BUNDLE_VERSION + 1}, "version must be an integer"),
    ({"version": True}, "version must be an integer"),
    ({"format": 2}, "format must be 1"),
    ({"created": "yesterday"}, "RFC 3339"),
    ({"model": "../etc"}, "model pair"),
    ({"model_sha256": "xyz"}, "64 lowercase hex"),
    ({"satellites": ["a b"]}, "link names"),
    ({"note": "bell\x07"}, "printable"),
    ({"files": [{"role": "onnx", "name": "../model.onnx", "bytes": 1, "sha256": "0" * 64}]},
     "each under its own name"),
    ({"files": [{"role": "confidence", "name": "confidence.json", "bytes": -1,
                 "sha256": "0" * 64}]}, "bytes must be"),
    ({"files": [{"role": "onnx", "name": "model.onnx", "bytes": 10, "sha256": "0" * 64}],
      "model_sha256": "0" * 64}, "needs canary"),
    ({"canary": {"file_sha256": "0" * 64, "counts": [1.0]}}, "with a new ONNX model only"),
    ({"extra": 1}, "exactly"),
])
def test_every_manifest_field_is_checked_even_when_signed(files, key, change, message):
    good = json.loads(Manifest.from_bytes(
        link_pb2.UpdateBundle.FromString(_build(files, key)).manifest).to_bytes())
    with pytest.raises(BundleError, match=message):
        open_bundle(_signed({**good, **change}, key), key.public_key())


def test_contents_are_checked_before_signing_and_after_opening(files, key):
    with pytest.raises(BundleError, match="conf_p"):
        _build({"thresholds": b'{"conf_p": 0.9, "conf_q": 0.2}'}, key)
    with pytest.raises(BundleError, match="thresholds.json"):
        read_thresholds(b'{"conf_p": 0.1, "exploration": 0.5}')
    with pytest.raises(BundleError, match="thresholds.json"):
        read_thresholds(b'{"conf_q": NaN}')
    em = json.loads(files["error_model"])
    em["onboard"][1] = -1.0
    with pytest.raises(BundleError, match="onboard weights"):
        read_error_model(json.dumps(em).encode())
    conf = json.loads(files["confidence"])
    conf["iso_y"][0] = 2.0
    with pytest.raises(BundleError, match="confidence.json"):
        _build({"confidence": json.dumps(conf).encode()}, key)
    with pytest.raises(BundleError, match="some of"):
        _build({"weights.pt": b"x"}, key)


def test_the_signing_key_is_made_once_owner_only(tmp_path):
    key = make_signing_key(tmp_path / "ground" / "uplink-signing.key")
    for path in key.files():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = key.private.read_bytes()
    assert make_signing_key(key.private).private.read_bytes() == before  # kept
    private, public = load_private_key(key.private), load_public_key(key.public)
    assert public.public_bytes_raw() == private.public_key().public_bytes_raw()
    with pytest.raises(ValueError, match="must be Ed25519"):
        load_public_key(_ec_public(tmp_path))


def _ec_public(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.pub"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_the_key_sets_give_the_ground_its_key_and_the_satellites_the_public_half(tmp_path):
    creds = Credentials.make(tmp_path / "keys")
    assert creds.ground()["uplink_signing_key_file"] == creds.uplink.private
    assert creds.onboard()["uplink_public_key_file"] == creds.uplink.public
    env = creds.env()
    assert env["TARGETFUSE_ONBOARD_UPLINK_PUBLIC_KEY_FILE"] == str(creds.uplink.public)
    assert load_public_key(creds.uplink.public).public_bytes_raw() == \
        load_private_key(creds.uplink.private).public_key().public_bytes_raw()

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=6), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["format", "version", "created", "model",
                                        "model_sha256", "satellites", "files", "canary",
                                        "note", "other"]), _json))
def test_any_manifest_is_read_or_refused_with_a_bundle_error(raw):
    with contextlib.suppress(BundleError):  # read, or refused: nothing else
        Manifest.from_bytes(json.dumps(raw).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_are_opened_or_refused_with_a_bundle_error(blob):
    with pytest.raises(BundleError):
        open_bundle(blob, Ed25519PrivateKey.generate().public_key())

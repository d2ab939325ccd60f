"""The uplink's ground end: bundles built and signed by the command, kept once per version,
listed; each satellite's bundle version in force from its scenes' headers, stored with each
scene."""

from __future__ import annotations

import json

import pytest

from ground.link_server import receive
from ground.scenes import scene_report
from ground.store import SQLiteStore
from ground.uplink import BundleShelf, UplinkServicer, uplink_report
from ground.uplink_cli import main as uplink_main
from shared.model_bundle import ModelBundle, PairFiles
from shared.uplink.bundle import open_bundle
from shared.uplink.keys import load_public_key
from shared.wire import link_pb2


@pytest.fixture
def ground_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TARGETFUSE_GROUND_DB_PATH", str(tmp_path / "ground" / "ground.db"))
    return tmp_path / "ground"


def test_the_command_builds_signs_and_lists_bundles(ground_env, capsys):
    pair = PairFiles.of("objects")
    assert uplink_main(["build", "--confidence", str(pair.folder / "confidence.json"),
                        "--error-model", str(pair.error_model), "--conf-q", "0.8",
                        "--note", "refit"]) == 0
    assert uplink_main(["build", "--conf-p", "0.1", "--satellite", "satellite-2"]) == 0
    out = capsys.readouterr().out
    assert "uplink bundle 1:" in out and "uplink bundle 2:" in out
    # The key was made at first use, as the ground makes it at first start.
    public = load_public_key(ground_env / "uplink-signing.pub")
    opened = open_bundle((ground_env / "uplink" / "bundle-1.tfb").read_bytes(), public)
    assert opened.manifest.roles() == ["confidence", "error_model", "thresholds"]
    assert json.loads(opened.files["thresholds"]) == {"conf_q": 0.8}
    assert opened.manifest.model_sha256 == ModelBundle.shipped("objects", "onboard").card.sha256
    assert uplink_main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "every satellite" in lines[0] and "satellite-2" in lines[1]
    # A version is published once; bad input is an error, not a traceback.
    assert uplink_main(["build", "--conf-q", "0.5", "--version", "1"]) == 2
    assert uplink_main(["build", "--conf-p", "0.9", "--conf-q", "0.1"]) == 2
    assert uplink_main(["build"]) == 2
    assert "nothing to uplink" in capsys.readouterr().err


def test_a_new_counter_is_built_with_its_canary_counts(ground_env):
    pair = PairFiles.of("objects")
    assert uplink_main(["build", "--onnx", str(pair.folder / "shallow.onnx")]) == 0
    public = load_public_key(ground_env / "uplink-signing.pub")
    m = open_bundle((ground_env / "uplink" / "bundle-1.tfb").read_bytes(), public).manifest
    card = ModelBundle.shipped("objects", "onboard").card
    assert m.canary["file_sha256"] == card.extra["canary_tiles_sha256"]
    assert len(m.canary["counts"]) == 8 and m.model_sha256 == m.entry("onnx").sha256
    # A pair without canary tiles takes no new counter.
    assert uplink_main(["build", "--model", "aircraft", "--onnx",
                        str(PairFiles.of("aircraft").folder / "shallow.onnx")]) == 2


def _header(scene_id: str, version: int) -> link_pb2.DownlinkMessage:
    return link_pb2.DownlinkMessage(header=link_pb2.SceneHeader(
        scene_id=scene_id, grid=link_pb2.TileGrid(width=256, height=256, tile_size=256, rows=1,
                                                  cols=1), bundle_version=version))


def test_each_satellites_bundle_in_force_comes_from_its_newest_scene(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    for sender, scene, version in (("satellite-1", "a", 0), ("satellite-1", "b", 4),
                                   ("satellite-2", "a", 2)):
        assert receive(store, _header(scene, version), sender).status == link_pb2.Ack.COMMITTED
    assert receive(store, _header("c", 1 << 31), "satellite-2").status == \
        link_pb2.Ack.REJECTED  # beyond any version: refused like any number out of range
    report = uplink_report(store, None)
    assert [(s["sender"], s["bundle_version"], s["newest_scene"]) for s in
            report["satellites"]] == [("satellite-1", 4, "b"), ("satellite-2", 2, "a")]
    assert scene_report(store, "satellite-1:b")["bundle_version"] == 4  # kept with the scene
    store.close()


def test_the_shelf_offers_only_what_verifies(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.uplink.bundle import build

    key = Ed25519PrivateKey.generate()
    shelf = BundleShelf(tmp_path / "uplink", key.public_key())
    files = {"thresholds": b'{"conf_q": 0.7}'}
    shelf.put(build(files, version=2, model="objects", model_sha256="ab" * 32,
                    private_key=key), 2)
    # A file named as another version, a file that is no bundle, one signed elsewhere.
    (shelf.folder / "bundle-3.tfb").write_bytes((shelf.folder / "bundle-2.tfb").read_bytes())
    (shelf.folder / "bundle-4.tfb").write_bytes(b"junk")
    (shelf.folder / "bundle-5.tfb").write_bytes(build(
        files, version=5, model="objects", model_sha256="ab" * 32,
        private_key=Ed25519PrivateKey.generate()))
    (shelf.folder / "notes.txt").write_text("x")
    assert [b.version for b in shelf.bundles()] == [2]
    assert shelf.newest_for("anyone").version == 2 and shelf.next_version() == 6
    with pytest.raises(ValueError, match="published once"):
        shelf.put(b"x", 2)
    servicer = UplinkServicer(shelf, auth=None)
    assert uplink_report(SQLiteStore(tmp_path / "g.db"), servicer)["bundles"][0]["version"] == 2


def test_the_ground_api_shows_the_bundles_and_each_satellites_version(tmp_path):
    from fastapi.testclient import TestClient

    from ground.app import create_app
    from ground.settings import GroundSettings
    from shared.api_keys import Credentials
    from shared.uplink.bundle import build
    from shared.uplink.keys import load_private_key

    creds = Credentials.make(tmp_path / "keys")
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              model="aircraft", **creds.ground())
    shelf = BundleShelf(settings.uplink_folder(), load_public_key(creds.uplink.public))
    shelf.put(build({"thresholds": b'{"conf_q": 0.7}'}, version=1, model="aircraft",
                    model_sha256="ab" * 32,
                    private_key=load_private_key(creds.uplink.private)), 1)
    with TestClient(create_app(settings)) as client:
        key = {"Authorization": f"Bearer {creds.rest_key}"}
        body = client.get("/v1/uplink", headers=key).json()
        assert [b["version"] for b in body["bundles"]] == [1]
        assert body["bundles"][0]["files"] == {"thresholds": 15}
        assert body["satellites"] == []
        assert client.get("/v1/uplink").status_code == 401

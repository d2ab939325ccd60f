"""The uplink live on loopback: the real ground gRPC server (TLS, link keys) offers a signed
bundle; the satellite pulls it within its byte budget, a window at a time, resuming where it
stopped, verifies it, and applies it between scenes."""

from __future__ import annotations

import grpc
import pytest

from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from onboard import startup
from onboard.bundles import Uplink
from onboard.counter import OnboardCounter
from onboard.link.client import LinkClient
from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.processing import SceneProcessor
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.api_keys import Credentials
from shared.model_bundle import ModelBundle, PairFiles
from shared.uplink.bundle import build
from shared.uplink.keys import load_private_key
from shared.wire import link_pb2, link_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture
def ground(tmp_path):
    creds = Credentials.make(tmp_path / "keys", satellites=2)
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0,
                              db_path=tmp_path / "ground" / "g.db", **creds.ground())
    store = SQLiteStore(settings.db_path)
    uplinks: list = []
    server, port = create_server(settings, store, uplink_out=uplinks)
    server.start()
    yield creds, port, uplinks[0]
    server.stop(0)
    store.close()


def publish(creds, shelf, version: int, satellites=(), conf_q=0.6) -> bytes:
    pair = PairFiles.of("objects")
    files = {"confidence": (pair.folder / "confidence.json").read_bytes(),
             "error_model": pair.error_model.read_bytes(),
             "thresholds": f'{{"conf_q": {conf_q}}}'.encode()}
    blob = build(files, version=version, model="objects",
                 model_sha256=ModelBundle.shipped("objects", "onboard").card.sha256,
                 private_key=load_private_key(creds.uplink.private),
                 satellites=tuple(satellites))
    shelf.put(blob, version)
    return blob


def satellite(tmp_path, creds, port, budget: int):
    settings = OnboardSettings(data_dir=tmp_path / "sat", ground_target=f"127.0.0.1:{port}",
                               model="objects", precision="fp32",
                               uplink_bytes_per_window=budget, **creds.onboard())
    settings.data_dir.mkdir(parents=True)
    box = Outbox(settings.data_dir / "onboard.db")
    proc = SceneProcessor(settings, ScenesDB(box), OnboardCounter.shipped(
        "objects", threads=1, variant="fp32"))
    link = LinkClient(settings.ground_target, box, TokenBucket(1e9),
                      credentials=startup.link_credentials(settings),
                      key=startup.ground_key(settings))
    return proc, Uplink(settings, link, proc), box


def test_a_bundle_goes_up_within_the_budget_resumes_and_is_applied_between_scenes(
        tmp_path, ground):
    creds, port, servicer = ground
    blob = publish(creds, servicer.shelf, 1)
    proc, uplink, box = satellite(tmp_path, creds, port, budget=len(blob) // 2 + 1000)
    clock = [1_000_000.0]
    uplink.puller.clock = lambda: clock[0]
    assert uplink.puller.pull_once() == "partial"  # half of it in this window's budget
    assert uplink.puller.pull_once() == "budget"  # nothing left until the next window
    held = uplink.state()["transfer"]["partial"]
    assert held == {"version": 1, "bytes_held": len(blob) // 2 + 1000, "bytes": len(blob)}
    clock[0] += 3600  # the next "window" of an always-open link
    assert uplink.puller.pull_once() == "staged"  # resumed from the bytes held
    assert uplink.puller.bytes_received == len(blob)  # nothing fetched twice
    assert proc.bundle_version == 0  # staged: applied only when the next scene starts
    proc.updates.between_scenes()
    assert proc.bundle_version == 1 and proc.cfg.conf_q == 0.6
    assert uplink.puller.pull_once() == "none"  # the ground holds nothing newer
    assert servicer.reports["satellite-1"]["in_force"] == 1  # and heard what is in force
    box.close()


def test_a_forged_bundle_on_the_ground_is_never_offered_and_a_bad_one_is_refused_onboard(
        tmp_path, ground):
    creds, port, servicer = ground
    # A bundle file in the ground's folder signed by another key: the ground skips it.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pair = PairFiles.of("objects")
    forged = build({"error_model": pair.error_model.read_bytes()}, version=7, model="objects",
                   model_sha256="ab" * 32, private_key=Ed25519PrivateKey.generate())
    (servicer.shelf.folder / "bundle-7.tfb").write_bytes(forged)
    assert servicer.shelf.bundles() == []
    proc, uplink, box = satellite(tmp_path, creds, port, budget=1 << 20)
    assert uplink.puller.pull_once() == "none"
    # One the ground signed but for another counter: fetched, refused onboard, reported.
    signed = build({"error_model": pair.error_model.read_bytes()}, version=8,
                   model="objects", model_sha256="cd" * 32,
                   private_key=load_private_key(creds.uplink.private))
    servicer.shelf.put(signed, 8)
    assert uplink.puller.pull_once() == "refused"
    assert uplink.puller.pull_once() == "none"  # not fetched again
    report = servicer.reports["satellite-1"]
    assert report["refused"] == 8 and "fit for the counter" in report["refused_reason"]
    assert proc.bundle_version == 0
    box.close()


def test_bundles_go_to_the_satellites_they_name_and_only_with_a_link_key(tmp_path, ground):
    creds, port, servicer = ground
    publish(creds, servicer.shelf, 3, satellites=("satellite-2",))
    key1 = creds.satellite_key_file(1).read_text().strip()
    key2 = creds.satellite_key_file(2).read_text().strip()
    tls = grpc.ssl_channel_credentials(creds.tls.ca.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{port}", tls) as channel:
        stub = link_pb2_grpc.UplinkStub(channel)
        for call in (lambda: stub.Offer(link_pb2.OfferRequest(), timeout=10),
                     lambda: list(stub.Fetch(link_pb2.FetchRequest(version=3, max_bytes=10),
                                             timeout=10))):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        mine = (("authorization", f"Bearer {key1}"),)
        assert stub.Offer(link_pb2.OfferRequest(), timeout=10, metadata=mine).version == 0
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Fetch(link_pb2.FetchRequest(version=3, max_bytes=10), timeout=10,
                            metadata=mine))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        theirs = (("authorization", f"Bearer {key2}"),)
        offer = stub.Offer(link_pb2.OfferRequest(), timeout=10, metadata=theirs)
        assert offer.version == 3
        chunks = list(stub.Fetch(link_pb2.FetchRequest(version=3, offset=5, max_bytes=100),
                                 timeout=10, metadata=theirs))
        assert [(c.offset, len(c.data)) for c in chunks] == [(5, 100)]
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Fetch(link_pb2.FetchRequest(version=3, offset=offer.size + 1,
                                                  max_bytes=1), timeout=10, metadata=theirs))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.Offer(link_pb2.OfferRequest(refused_reason="x" * 5000), timeout=10,
                       metadata=theirs)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_onboard_api_shows_the_bundle_in_force_and_the_transfer(tmp_path, ground):
    from fastapi.testclient import TestClient

    from onboard.app import create_app

    creds, port, servicer = ground
    settings = OnboardSettings(data_dir=tmp_path / "sat", ground_target=f"127.0.0.1:{port}",
                               model="objects", precision="fp32", **creds.onboard())
    with TestClient(create_app(settings, start=False)) as client:
        key = {"Authorization": f"Bearer {creds.rest_key}"}
        body = client.get("/v1/uplink", headers=key).json()
        assert body["enabled"] and body["in_force"] == 0 and body["refused"] == {}
        assert body["transfer"]["bytes_per_window"] == 1 << 20
        assert client.get("/v1/link", headers=key).json()["counter"]["bundle_version"] == 0


def test_a_transfer_cut_mid_stream_resumes_from_the_bytes_held(tmp_path, ground, monkeypatch):
    import ground.uplink as ground_uplink

    creds, port, servicer = ground
    blob = publish(creds, servicer.shelf, 1)
    proc, uplink, box = satellite(tmp_path, creds, port, budget=1 << 20)
    real = ground_uplink.blob_chunks

    def cut(*args, **kwargs):  # the link drops after the first chunk (of 50 kB here)
        chunks = real(*args, **kwargs, chunk_bytes=50_000)
        yield next(chunks)
        raise ConnectionError("link lost")

    monkeypatch.setattr(ground_uplink, "blob_chunks", cut)
    with pytest.raises(grpc.RpcError):
        uplink.puller.pull_once()
    assert uplink.puller.partial.offset == 50_000  # the first chunk is kept
    monkeypatch.setattr(ground_uplink, "blob_chunks", real)
    assert uplink.puller.pull_once() == "staged"
    assert uplink.puller.bytes_received == len(blob)  # the rest only
    proc.updates.between_scenes()
    assert proc.bundle_version == 1
    box.close()

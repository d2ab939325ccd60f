"""The link's authentication and scene ownership, over a real gRPC server on loopback: a
call without a known key is refused before any servicer code runs; a sender cannot write
into, or learn the holdings of, a scene another sender created; health stays open."""

from __future__ import annotations

import stat

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ground import startup
from ground.link_server import create_server
from ground.settings import GroundSettings
from ground.store import SQLiteStore
from onboard.app import create_app as onboard_app
from onboard.settings import OnboardSettings
from onboard.startup import ground_key
from shared.api_keys import Credentials, load_named_keys
from shared.wire import link_pb2, link_pb2_grpc

A, B = "a" * 32, "b" * 32


@pytest.fixture
def ground(tmp_path):
    keys = tmp_path / "link-keys"
    keys.write_text(f"# two satellites\nsat-a {A}\nsat-b {B}\n")
    settings = GroundSettings(grpc_host="127.0.0.1", grpc_port=0, db_path=tmp_path / "g.db",
                              link_keys_file=keys, link_tls=False)  # TLS: test_link_tls*
    store = SQLiteStore(settings.db_path)
    server, port = create_server(settings, store)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield store, channel
    channel.close()
    server.stop(None)
    store.close()


def header(scene_id: str) -> link_pb2.DownlinkMessage:
    return link_pb2.DownlinkMessage(seq=1, header=link_pb2.SceneHeader(
        scene_id=scene_id, grid=link_pb2.TileGrid(width=256, height=256, tile_size=256,
                                                  rows=1, cols=1)))


def summary(scene_id: str) -> link_pb2.DownlinkMessage:
    return link_pb2.DownlinkMessage(seq=2, summary=link_pb2.SceneSummary(
        scene_id=scene_id, tiles=[link_pb2.TileDecision(index=0, decision=link_pb2.ACCEPTED,
                                                        onboard_count=2.0)]))


def send(channel, key: str | None, *msgs):
    meta = (("authorization", f"Bearer {key}"),) if key else ()
    return list(link_pb2_grpc.DownlinkStub(channel).Send(iter(msgs), timeout=10,
                                                         metadata=meta))


@pytest.mark.parametrize("key", [None, "c" * 32])
def test_a_call_without_a_known_key_is_refused(ground, key):
    store, channel = ground
    stub = link_pb2_grpc.DownlinkStub(channel)
    meta = (("authorization", f"Bearer {key}"),) if key else ()
    for call in (lambda: send(channel, key, header("s")),
                 lambda: stub.Committed(link_pb2.CommittedRequest(scene_id="s"), timeout=10,
                                        metadata=meta)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not store.has_scene("s")
    probe = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                      timeout=10)
    assert probe.status == health_pb2.HealthCheckResponse.SERVING  # probes need no key


def test_a_scene_belongs_to_the_sender_that_created_it(ground):
    """Issue 26, finding 5: satellite B's header for an id satellite A uses next (sent
    first) pre-empted A's scene, which was refused for good. Ids are scoped per sender:
    both scenes are kept, neither sender can write into or learn of the other's."""
    store, channel = ground
    first = send(channel, B, header("victim2"))
    assert first[0].status == link_pb2.Ack.COMMITTED
    acks = send(channel, A, header("victim2"), summary("victim2"))
    assert [a.status for a in acks] == [link_pb2.Ack.COMMITTED] * 2, acks
    assert store.owner("sat-a:victim2") == "sat-a" and store.owner("sat-b:victim2") == "sat-b"
    assert store.summary("sat-a:victim2") is not None
    assert store.summary("sat-b:victim2") is None  # A's summary went to A's scene
    assert sorted(store.resolve("victim2")) == ["sat-a:victim2", "sat-b:victim2"]
    told = link_pb2_grpc.DownlinkStub(channel).Committed(
        link_pb2.CommittedRequest(scene_id="victim2"), timeout=10,
        metadata=(("authorization", f"Bearer {B}"),))
    assert told.scene_id == "victim2" and told.header and not told.summary  # B's own
    own = link_pb2_grpc.DownlinkStub(channel).Committed(
        link_pb2.CommittedRequest(scene_id="victim2"), timeout=10,
        metadata=(("authorization", f"Bearer {A}"),))
    assert own.header and own.summary


def test_authentication_is_on_by_default(tmp_path):
    """Settings that name no keys file: each service makes one (owner-only) at first start
    and refuses requests without its key; only auth=false opens them."""
    g = GroundSettings(db_path=tmp_path / "g" / "ground.db")
    link_keys = startup.sender_keys_file(g)
    assert link_keys == tmp_path / "g" / "link-keys"
    assert stat.S_IMODE(link_keys.stat().st_mode) == 0o600
    assert list(load_named_keys(link_keys).values()) == ["satellite"]
    assert startup.sender_keys_file(g) == link_keys  # made once, then kept
    assert startup.sender_keys_file(GroundSettings(auth=False, db_path=tmp_path / "x.db")) \
        is None
    settings = OnboardSettings(data_dir=tmp_path / "o", ground_target="127.0.0.1:1",
                               model="aircraft")
    with TestClient(onboard_app(settings, start=False)) as client:
        assert client.get("/v1/link").status_code == 401
        key = (tmp_path / "o" / "api-keys").read_text().split()[-1]
        assert client.get("/v1/link", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_credentials_make_a_matching_set(tmp_path):
    creds = Credentials.make(tmp_path / "k")
    sat_key = creds.satellite_file.read_text().strip().encode()
    assert load_named_keys(creds.link_file) == {sat_key: "satellite-1"}
    assert Credentials.make(tmp_path / "k").rest_key == creds.rest_key  # kept, not remade
    assert ground_key(OnboardSettings(**creds.onboard(), data_dir=tmp_path)) == sat_key


def test_credentials_for_a_constellation_give_each_satellite_its_own_key(tmp_path):
    creds = Credentials.make(tmp_path / "k", satellites=3)
    named = load_named_keys(creds.link_file)
    assert sorted(named.values()) == ["satellite-1", "satellite-2", "satellite-3"]
    for n in (1, 2, 3):
        key = creds.satellite_key_file(n).read_text().strip().encode()
        assert named[key] == f"satellite-{n}"

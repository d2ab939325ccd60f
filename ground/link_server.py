"""The ground end of the downlink: a gRPC ``Downlink`` servicer over the store, and health.

``receive`` holds the logic (plain function, tested directly): a header or summary is stored
idempotently; a chunk is stored, and once its tile's chunks add up to the announced size and
sha256 the tile is committed in one transaction (a tile committed already is acknowledged
again and stored once); a completed tile must decode as a JPEG of at most ``MAX_TILE_SIDE``
a side (its header is read before any pixel is). A scene belongs to the sender whose header
created it (``ground.link_auth``): any part of it from another sender is REJECTED, and
``Committed`` tells another sender nothing. Anything inconsistent is REJECTED with the
reason, and nothing of it is committed. The servicer only streams acknowledgements back;
``create_server`` builds the server, with the link's authentication and the standard gRPC
health service on it.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ground.link_auth import LinkAuth
from ground.settings import GroundSettings
from ground.store import Store
from shared.api_keys import load_named_keys
from shared.pipeline.codec import decode_tile
from shared.scene_ids import RULE as SCENE_ID_RULE
from shared.scene_ids import valid_scene_id
from shared.tile_grid import MAX_TILES
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.chunks import ChunkError, TileAssembly
from shared.wire.tls import server_credentials

log = logging.getLogger("targetfuse.ground.link")
SERVICE_NAME = "targetfuse.v1.Downlink"
Ack = link_pb2.Ack
DECISIONS = {v for k, v in link_pb2.Decision.items() if k != "DECISION_UNSPECIFIED"}


def _reject(scene_id: str, error: str) -> link_pb2.Ack:
    return Ack(scene_id=scene_id, status=Ack.REJECTED, error=error)


def _foreign(scene_id: str) -> link_pb2.Ack:
    return _reject(scene_id, f"scene {scene_id} belongs to another sender")


def receive(store: Store, msg: link_pb2.DownlinkMessage, sender: str = "",
            on_commit=None) -> link_pb2.Ack:
    """Store one part from ``sender`` (the authenticated name; "" when anonymous);
    ``on_commit(scene_id, tile_index)`` after a tile is newly committed (the segment's
    "tile ready" announcement)."""
    kind = msg.WhichOneof("payload")
    if kind == "header":
        h = msg.header
        g = h.grid
        if not valid_scene_id(h.scene_id):
            return _reject("", f"scene id: {SCENE_ID_RULE}")
        if g.tile_size < 1 or g.rows < 1 or g.cols < 1 or g.rows * g.cols > MAX_TILES:
            return _reject(h.scene_id, f"header needs a tile grid of 1 to {MAX_TILES} tiles")
        if len(set(h.classes)) != len(h.classes) or any(not c for c in h.classes):
            return _reject(h.scene_id, "header classes must be distinct, non-empty names")
        store.put_header(h, sender)  # the first header wins, atomically
        if store.owner(h.scene_id) != sender:
            return _foreign(h.scene_id)
        return Ack(scene_id=h.scene_id, status=Ack.COMMITTED, header=True)
    if kind == "summary":
        s = msg.summary
        header = store.header(s.scene_id)
        if header is None:
            return _reject(s.scene_id, "summary for a scene whose header has not arrived")
        if store.owner(s.scene_id) != sender:
            return _foreign(s.scene_id)
        n = header.grid.rows * header.grid.cols
        if len(s.tiles) != n or [t.index for t in s.tiles] != list(range(n)):
            return _reject(s.scene_id, f"summary must list all {n} tiles in order")
        unknown = [t.index for t in s.tiles if t.decision not in DECISIONS]
        if unknown:
            return _reject(s.scene_id, f"tile {unknown[0]}: unknown decision")
        width = max(len(header.classes), 1)  # none named: one unnamed class
        odd = [t.index for t in s.tiles if len(t.class_counts) not in (0, width)]
        if odd:
            return _reject(s.scene_id, f"tile {odd[0]}: class counts must match the header's "
                                       f"{width} classes")
        store.put_summary(s)
        return Ack(scene_id=s.scene_id, status=Ack.COMMITTED, summary=True)
    if kind == "chunk":
        return _receive_chunk(store, msg.chunk, sender, on_commit)
    return _reject("", "empty message")


def committed(store: Store, scene_id: str, sender: str = "") -> link_pb2.CommittedReply:
    """What the ground holds of a scene, told only to the scene's owner."""
    if store.owner(scene_id) not in (None, sender):
        return link_pb2.CommittedReply(scene_id=scene_id)
    return store.committed(scene_id)


def _receive_chunk(store: Store, c: link_pb2.TileChunk, sender: str,
                   on_commit=None) -> link_pb2.Ack:
    header = store.header(c.scene_id)
    if header is None:
        return _reject(c.scene_id, "tile for a scene whose header has not arrived")
    if store.owner(c.scene_id) != sender:
        return _foreign(c.scene_id)
    if c.tile_index >= header.grid.rows * header.grid.cols:
        return _reject(c.scene_id, f"tile {c.tile_index} is outside the scene's grid")
    if store.is_committed(c.scene_id, c.tile_index):
        return Ack(scene_id=c.scene_id, status=Ack.COMMITTED, tile_index=c.tile_index)
    if len(c.sha256) != 32 or c.offset + len(c.data) > c.total_size:
        return _reject(c.scene_id, f"tile {c.tile_index}: malformed chunk")
    if not (0.0 <= c.sent_gsd_m <= 1000.0):  # NaN fails too; 0 means unknown
        return _reject(c.scene_id, f"tile {c.tile_index}: sent GSD out of range")
    assembly = TileAssembly(c.total_size, c.sha256, store.chunks(c.scene_id, c.tile_index))
    try:
        data = assembly.add(c)
    except ChunkError as exc:
        return _reject(c.scene_id, str(exc))
    if data is None:
        store.put_chunk(c)
        return Ack(scene_id=c.scene_id, status=Ack.PARTIAL, tile_index=c.tile_index)
    try:
        decode_tile(data)  # header checked first: no bomb is ever decoded
    except ValueError as exc:
        return _reject(c.scene_id, f"tile {c.tile_index}: {exc}")
    if store.commit_tile(c, data):  # another station may have committed it just now
        store.log_bytes(c.total_size)
        if on_commit is not None:
            on_commit(c.scene_id, c.tile_index)
    return Ack(scene_id=c.scene_id, status=Ack.COMMITTED, tile_index=c.tile_index)


def announcer(queue):
    """``on_commit`` for a station of the segment: publish "tile ready"; a failure is
    logged, not raised (the tile is committed; the workers' sweep announces it again)."""
    if queue is None:
        return None

    def announce(scene_id: str, tile_index: int) -> None:
        try:
            queue.publish(scene_id, tile_index)
        except Exception:  # noqa: BLE001
            log.exception("could not announce tile %s/%s; the sweep will", scene_id,
                          tile_index)
    return announce


class DownlinkServicer(link_pb2_grpc.DownlinkServicer):
    def __init__(self, store: Store, auth: LinkAuth, tile_queue=None):
        self.store, self.auth = store, auth
        self.on_commit = announcer(tile_queue)

    def Send(self, request_iterator, context):  # noqa: N802 (gRPC method name)
        sender = self.auth.sender(context)
        for msg in request_iterator:
            ack = receive(self.store, msg, sender, self.on_commit)
            ack.seq = msg.seq
            yield ack

    def Committed(self, request, context):  # noqa: N802
        return committed(self.store, request.scene_id, self.auth.sender(context))


def create_server(settings: GroundSettings, store: Store, tile_queue=None
                  ) -> tuple[grpc.Server, int]:
    """The gRPC server (not started) and the port it is bound to; with ``tile_queue``
    (``ground.tile_queue``), each newly committed tile is announced on it."""
    opts = [("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000)]
    auth = LinkAuth(load_named_keys(settings.sender_keys_file()))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.grpc_workers),
                         options=opts, interceptors=[auth])
    link_pb2_grpc.add_DownlinkServicer_to_server(DownlinkServicer(store, auth, tile_queue),
                                                 server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in ("", SERVICE_NAME):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    creds = server_credentials(settings.tls_cert_file, settings.tls_key_file,
                               settings.tls_client_ca_file)
    port = server.add_secure_port(address, creds) if creds is not None else \
        server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {settings.grpc_host}:{settings.grpc_port}")
    return server, port

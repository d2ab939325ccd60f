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
import math
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ground import startup
from ground.link_auth import LinkAuth
from ground.settings import GroundSettings
from ground.store import Store, StoreLost, scene_key
from ground.uplink import UplinkServicer
from shared import limits
from shared.api_keys import load_named_keys
from shared.pipeline.codec import decode_tile, tile_size_of
from shared.scene_ids import RULE as SCENE_ID_RULE
from shared.scene_ids import valid_scene_id
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.chunks import ChunkError, TileAssembly
from shared.wire.tls import server_credentials

log = logging.getLogger("targetfuse.ground.link")
SERVICE_NAME = "targetfuse.v1.Downlink"
Ack = link_pb2.Ack
DECISIONS = {v for k, v in link_pb2.Decision.items() if k != "DECISION_UNSPECIFIED"}


def _reject(scene_id: str, error: str) -> link_pb2.Ack:
    return Ack(scene_id=scene_id, status=Ack.REJECTED, error=error)


def receive(store: Store, msg: link_pb2.DownlinkMessage, sender: str = "",
            on_commit=None, work=None) -> link_pb2.Ack:
    """Store one part from ``sender`` (the authenticated name; "" when anonymous), under the
    scene's key for that sender (``ground.store.scene_key``: another sender's scene of the
    same id is another scene); ``on_commit(key, tile_index, sha256_hex)`` after a tile is newly
    committed (the segment's "tile ready" announcement); ``work(width, height, sent_gsd,
    resized)``: the counter inputs a tile would cost (``shared.limits.check_tile_work``),
    raising OutOfRange beyond the bound. Every number is checked by ``shared.limits`` before
    anything is stored."""
    kind = msg.WhichOneof("payload")
    if kind == "header":
        h = msg.header
        if not valid_scene_id(h.scene_id):
            return _reject("", f"scene id: {SCENE_ID_RULE}")
        try:
            limits.check_header(h)
        except limits.OutOfRange as exc:
            return _reject(h.scene_id, str(exc))
        store.put_header(h, sender)  # the first header of this sender's scene stands
        return Ack(scene_id=h.scene_id, status=Ack.COMMITTED, header=True)
    if kind == "summary":
        s = msg.summary
        key = scene_key(sender, s.scene_id)
        header = store.header(key)
        if header is None:
            return _reject(s.scene_id, "summary for a scene whose header has not arrived")
        try:
            limits.check_summary(s, header)
        except limits.OutOfRange as exc:
            return _reject(s.scene_id, str(exc))
        store.put_summary(s, key)
        return Ack(scene_id=s.scene_id, status=Ack.COMMITTED, summary=True)
    if kind == "chunk":
        return _receive_chunk(store, msg.chunk, sender, on_commit, work)
    return _reject("", "empty message")


def committed(store: Store, scene_id: str, sender: str = "") -> link_pb2.CommittedReply:
    """What the ground holds of this sender's scene (never another sender's)."""
    reply = store.committed(scene_key(sender, scene_id))
    reply.scene_id = scene_id
    return reply


def _receive_chunk(store: Store, c: link_pb2.TileChunk, sender: str,
                   on_commit=None, work=None) -> link_pb2.Ack:
    key = scene_key(sender, c.scene_id)
    header = store.header(key)
    if header is None:
        return _reject(c.scene_id, "tile for a scene whose header has not arrived")
    try:
        limits.check_chunk(c, header)
    except limits.OutOfRange as exc:
        return _reject(c.scene_id, str(exc))
    if store.is_committed(key, c.tile_index):
        return Ack(scene_id=c.scene_id, status=Ack.COMMITTED, tile_index=c.tile_index)
    assembly = TileAssembly(c.total_size, c.sha256, store.chunks(key, c.tile_index))
    try:
        data = assembly.add(c)
    except ChunkError as exc:
        return _reject(c.scene_id, str(exc))
    if data is None:
        store.put_chunk(c, key)
        return Ack(scene_id=c.scene_id, status=Ack.PARTIAL, tile_index=c.tile_index)
    try:
        size = tile_size_of(data)  # header checked first: no bomb is ever decoded
        decode_tile(data)
        if work is not None:  # the cost of counting it, bounded before it is stored
            work(size[0], size[1], c.sent_gsd_m or None, c.resized)
    except ValueError as exc:
        return _reject(c.scene_id, f"tile {c.tile_index}: {exc}")
    if store.commit_tile(c, data, key):  # another station may have committed it just now
        store.log_bytes(c.total_size)
        if on_commit is not None:
            on_commit(key, c.tile_index, c.sha256.hex())
    return Ack(scene_id=c.scene_id, status=Ack.COMMITTED, tile_index=c.tile_index)


def announcer(queue):
    """``on_commit`` for a station of the segment: publish "tile ready"; a failure is
    logged, not raised (the tile is committed; the workers' sweep announces it again)."""
    if queue is None:
        return None

    def announce(scene_id: str, tile_index: int, digest: str) -> None:
        try:
            queue.publish(scene_id, tile_index, digest)
        except Exception:  # noqa: BLE001
            log.exception("could not announce tile %s/%s; the sweep will", scene_id,
                          tile_index)
    return announce


class StreamGate:
    """How many ``Send`` streams each sender holds open, bounded per sender and in all, so
    one key cannot take every server thread and starve the other satellites; a stream idle
    for ``idle_s`` (no part received) is cancelled. ``saturated`` says when every stream
    slot is taken (the health service and ``/readyz`` report it)."""

    def __init__(self, per_sender: int, capacity: int, idle_s: float, on_change=None):
        self.per_sender, self.capacity, self.idle_s = per_sender, capacity, idle_s
        self.open: dict[str, int] = {}
        self.last: dict[int, tuple[float, object]] = {}  # stream -> (last part, context)
        self.refused = 0
        self.idle_cancelled = 0
        self._lock = threading.Lock()
        self._on_change = on_change
        self._watch = threading.Thread(target=self._watchdog, daemon=True,
                                       name="link-idle-watch")
        self._halt = threading.Event()
        self._watch.start()

    def total(self) -> int:
        return sum(self.open.values())

    def saturated(self) -> bool:
        return self.total() >= self.capacity

    def enter(self, sender: str, stream: int, context) -> str | None:
        """None when the stream may run, else why not."""
        with self._lock:
            if self.open.get(sender, 0) >= self.per_sender:
                self.refused += 1
                return (f"this sender has {self.per_sender} link streams open already; "
                        "close one first")
            if self.total() >= self.capacity:
                self.refused += 1
                return f"the link end is saturated ({self.capacity} streams open); retry"
            self.open[sender] = self.open.get(sender, 0) + 1
            self.last[stream] = (time.monotonic(), context)
        self._changed()
        return None

    def touch(self, stream: int, busy: bool = False) -> None:
        """A part arrived (``busy``: being handled, not idle however long it takes) or its
        acknowledgement went out (waiting for the sender again: idle from now)."""
        entry = self.last.get(stream)
        if entry is not None:
            self.last[stream] = (math.inf if busy else time.monotonic(), entry[1])

    def leave(self, sender: str, stream: int) -> None:
        with self._lock:
            self.open[sender] -= 1
            if not self.open[sender]:
                del self.open[sender]
            self.last.pop(stream, None)
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.saturated())

    def _watchdog(self) -> None:
        while not self._halt.wait(min(1.0, self.idle_s / 4)):
            now = time.monotonic()
            with self._lock:
                idle = [(k, c) for k, (t, c) in self.last.items() if now - t > self.idle_s]
                for k, _ in idle:
                    self.last.pop(k, None)
            for _, context in idle:
                self.idle_cancelled += 1
                context.cancel()  # the stream's thread leaves its wait for the next part

    def state(self) -> dict:
        return {"streams_open": self.total(), "stream_capacity": self.capacity,
                "streams_per_sender": self.per_sender, "saturated": self.saturated(),
                "streams_refused": self.refused, "idle_streams_cancelled":
                self.idle_cancelled}

    def stop(self) -> None:
        self._halt.set()


class DownlinkServicer(link_pb2_grpc.DownlinkServicer):
    def __init__(self, store: Store, auth: LinkAuth, tile_queue=None, gate=None, work=None):
        self.store, self.auth, self.gate, self.work = store, auth, gate, work
        self.on_commit = announcer(tile_queue)

    def _check_store(self, context) -> None:
        try:
            self.store.check()
        except StoreLost as exc:
            log.error("%s", exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    def Send(self, request_iterator, context):  # noqa: N802 (gRPC method name)
        sender = self.auth.sender(context)
        stream = id(context)
        if self.gate is not None:
            refused = self.gate.enter(sender, stream, context)
            if refused is not None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
        try:
            self._check_store(context)
            for msg in request_iterator:
                if self.gate is not None:
                    self.gate.touch(stream, busy=True)
                ack = receive(self.store, msg, sender, self.on_commit, self.work)
                # Acknowledged only while the store is the one it was written to.
                self._check_store(context)
                ack.seq = msg.seq
                yield ack
                if self.gate is not None:
                    self.gate.touch(stream)
        finally:
            if self.gate is not None:
                self.gate.leave(sender, stream)

    def Committed(self, request, context):  # noqa: N802
        self._check_store(context)
        return committed(self.store, request.scene_id, self.auth.sender(context))


def create_server(settings: GroundSettings, store: Store, tile_queue=None, counter=None,
                  gate_out: list | None = None, uplink_out: list | None = None
                  ) -> tuple[grpc.Server, int]:
    """The gRPC server (not started) and the port it is bound to; with ``tile_queue``
    (``ground.tile_queue``), each newly committed tile is announced on it; with ``counter``
    (the ground counter), a tile that would cost it more than
    ``shared.limits.MAX_INPUTS_PER_TILE`` inputs is rejected before it is stored.
    ``gate_out``: a list the stream gate is appended to (readiness reads it); the uplink
    (``ground.uplink``: signed bundles for the satellites to pull) is served beside the
    downlink, its servicer appended to ``uplink_out``."""
    opts = [("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000)]
    auth = LinkAuth(load_named_keys(startup.sender_keys_file(settings)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.grpc_workers),
                         options=opts, interceptors=[auth])
    checker = health.HealthServicer()
    serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                            health_pb2.HealthCheckResponse.NOT_SERVING)

    def saturation(full: bool) -> None:  # health says when no stream slot is left
        for name in ("", SERVICE_NAME):
            checker.set(name, not_serving if full else serving)

    # Two threads stay free of streams: Committed calls and health checks always answer.
    gate = StreamGate(settings.link_streams_per_sender, max(1, settings.grpc_workers - 2),
                      settings.link_idle_s, saturation)
    if gate_out is not None:
        gate_out.append(gate)
    work = None
    if counter is not None:
        size, gsd = counter.card.input_size, counter.card.model_gsd_m

        def work(w, h, sent_gsd, resized):
            return limits.check_tile_work(w, h, sent_gsd, resized, size, gsd)
    link_pb2_grpc.add_DownlinkServicer_to_server(
        DownlinkServicer(store, auth, tile_queue, gate, work), server)
    uplink = UplinkServicer.of(settings, auth)
    link_pb2_grpc.add_UplinkServicer_to_server(uplink, server)
    if uplink_out is not None:
        uplink_out.append(uplink)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    saturation(False)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    files = startup.link_tls_files(settings)
    creds = server_credentials(*files) if files is not None else None
    port = server.add_secure_port(address, creds) if creds is not None else \
        server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {settings.grpc_host}:{settings.grpc_port}")
    return server, port

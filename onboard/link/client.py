"""The onboard gRPC client that drains the outbox to the ground, inside contact windows.

``drain_once`` is one connection: it first asks the ground what it already holds of every
scene not yet confirmed (resume after an outage, so nothing is sent twice for nothing; and
end-to-end confirmation: a scene is delivered only when the ground holds all of it, and
parts a ground lost or refused go again, ``Outbox.reconcile``), then streams up to ``batch``
parts in queue order, each released by the token bucket and only while the window is open,
and marks each acknowledged part as sent. ``run`` repeats it, waiting for the next window
when the link is closed and backing off exponentially (with a cap) after a failure.
Keepalive pings detect a dead link; every call has a deadline and carries the satellite's
link key (``authorization: Bearer``), which the ground checks before anything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from onboard.link.outbox import Outbox
from onboard.link.ratelimit import TokenBucket
from onboard.link.windows import ContactSchedule
from shared.wire import link_pb2, link_pb2_grpc

log = logging.getLogger("targetfuse.onboard.link")
CHANNEL_OPTIONS = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000),
                   ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.max_send_message_length", 4 * 1024 * 1024)]


class LinkClient:
    def __init__(self, target: str, outbox: Outbox, bucket: TokenBucket,
                 schedule: ContactSchedule | None = None, *, deadline_s: float = 30.0,
                 batch: int = 64, clock: Callable[[], float] = time.time,
                 backoff_s: tuple[float, float] = (0.2, 10.0),
                 credentials: grpc.ChannelCredentials | None = None,
                 server_name: str | None = None, key: bytes | None = None,
                 station_targets: dict[str, str] | None = None):
        """``credentials``: TLS (``shared.wire.tls.channel_credentials``), else plaintext;
        ``server_name``: the name the ground's certificate was issued for, when the target
        is an address; ``key``: the link key presented with every call;
        ``station_targets``: where each station of a planned window listens (a window with
        a station not named, or none, goes to ``target``)."""
        self.station_targets = dict(station_targets or {})
        self.metadata = (("authorization", f"Bearer {key.decode()}"),) if key else ()
        self.target, self.outbox, self.bucket = target, outbox, bucket
        self.credentials = credentials
        self.options = CHANNEL_OPTIONS + ([("grpc.ssl_target_name_override", server_name)]
                                          if server_name else [])
        self.schedule = schedule or ContactSchedule.always()
        self.deadline_s, self.batch, self.clock = deadline_s, batch, clock
        self.backoff_s = backoff_s
        self.rejected = 0
        self.link_up = False
        self.bytes_sent = 0
        # Seconds spent in connections that had something to do (``drain_once``): what the
        # bytes sent took on the wire, so their ratio is the goodput a wire measurement
        # gives (``/v1/link``).
        self.busy_s = 0.0
        self._working = False
        self.bytes_by_station: dict[str, int] = {}  # acknowledged bytes, per ground end

    def target_at(self, now: float) -> str:
        """The ground end to talk to now: the open window's station's, else the default."""
        return self._target(self.schedule.window(now))

    def _target(self, window) -> str:
        if window is None or window.station is None:
            return self.target
        return self.station_targets.get(window.station, self.target)

    def _channel(self, target: str) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(target, options=self.options)
        return grpc.secure_channel(target, self.credentials, options=self.options)

    def open_channel(self, target: str) -> grpc.Channel:
        """A channel to ``target`` as the downlink's: its TLS and options (the uplink's
        calls go over the same link, with the same key: ``metadata``)."""
        return self._channel(target)

    def drain_once(self) -> int:
        """One connection; returns how many parts the ground acknowledged. Its time counts
        to ``busy_s`` when it had something to do (parts to send, or scenes whose delivery
        the ground had yet to confirm): the seconds a wire measurement of the same bytes
        spans, and not those with nothing queued."""
        started = time.monotonic()
        self._working = False
        try:
            return self._drain()
        finally:
            if self._working:
                self.busy_s += time.monotonic() - started

    def _drain(self) -> int:
        # Chosen per connection: each drain goes to the station of the window it runs in,
        # and its acknowledged bytes are booked to that station.
        window = self.schedule.window(self.clock())
        station = (window.station if window is not None else None) or "default"
        with self._channel(self._target(window)) as channel:
            stub = link_pb2_grpc.DownlinkStub(channel)
            for scene_id in self.outbox.unconfirmed_scenes():
                self._working = True
                held = stub.Committed(link_pb2.CommittedRequest(scene_id=scene_id),
                                      timeout=self.deadline_s, metadata=self.metadata)
                state = self.outbox.reconcile(held)
                if state == "refused":
                    log.error("scene %s refused by the ground: %s", scene_id,
                              self.outbox.confirmation(scene_id)[1])
                elif state == "resent":
                    log.warning("the ground lacks parts of %s it had acknowledged: resending",
                                scene_id)
            parts = self.outbox.pending(self.batch)
            if not parts:
                self.link_up = True
                return 0
            self._working = True
            sizes = {p.seq: p.size for p in parts}

            def stream():
                for p in parts:
                    if not self.schedule.is_open(self.clock()):
                        return  # the window closed: the rest waits for the next one
                    self.bucket.consume(p.size)
                    yield p.message

            done: dict[int, str | None] = {}
            try:
                for ack in stub.Send(stream(), timeout=self.deadline_s,
                                     metadata=self.metadata):
                    self.link_up = True
                    if ack.status == link_pb2.Ack.REJECTED:
                        # Kept with its reason: the scene's confirmation decides whether it
                        # goes again (the ground had lost the scene) or is refused.
                        log.error("ground rejected part %s of %s: %s", ack.seq,
                                  ack.scene_id, ack.error)
                        self.rejected += 1
                    done[ack.seq] = ack.error or "rejected" \
                        if ack.status == link_pb2.Ack.REJECTED else None
                    self.bytes_sent += sizes.get(ack.seq, 0)
                    self.bytes_by_station[station] = \
                        self.bytes_by_station.get(station, 0) + sizes.get(ack.seq, 0)
            finally:  # what was acknowledged before a failure stays acknowledged
                self.outbox.ack(done)
            return len(done)

    def run(self, stop: threading.Event, idle_s: float = 0.5) -> None:
        delay = self.backoff_s[0]
        while not stop.is_set():
            now = self.clock()
            if not self.schedule.is_open(now):
                nxt = self.schedule.next_open(now)
                stop.wait(idle_s if nxt is None else min(max(nxt - now, 0.0), idle_s * 4))
                continue
            window = self.schedule.window(now)
            if window is not None and window.rate_bytes_s and \
                    window.rate_bytes_s != self.bucket.rate:
                # A planned window carries its own rate (elevation-dependent, its mean).
                self.bucket.set_rate(window.rate_bytes_s)
            try:
                sent = self.drain_once()
                delay = self.backoff_s[0]
                if sent == 0:
                    stop.wait(idle_s)
            except grpc.RpcError as exc:
                self.link_up = False
                log.warning("downlink failed (%s: %s); retrying in %.1f s", exc.code(),
                            exc.details(), delay)
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_s[1])

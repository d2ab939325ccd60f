"""The ground segment's counting queue on NATS JetStream: "tile ready" work, pulled by workers.

A station publishes one message per committed tile (subject ``<prefix>.ready``, payload
``{"scene_id", "tile_index"}``, ``Nats-Msg-Id`` = ``scene:tile:<the tile's sha256>`` so
JetStream drops a duplicate published within its window, e.g. the same tile committed
through two stations). The digest is in the id so that nobody without the tile can take its
id first: with ``scene:tile`` alone, a message published ahead under that id made JetStream
drop the real announcement as a duplicate (the tile waited for the sweep, 149 s). The
sweep's re-announcements carry no id (a tile announced twice is counted once: the worker
skips a tile already counted).
The stream keeps work-queue retention: a message leaves it when a worker acknowledges it.
Counting workers share one durable pull consumer: each fetch hands a batch to one worker; a
worker acknowledges only after the counts are committed, so a worker that dies mid-count
leaves its messages to be redelivered after ``ack_wait_s``; after ``max_deliver`` deliveries
a tile is quarantined by the worker (``ground.queue_counting.QueueCountingWorker``).

nats-py is asyncio; the services are threaded. So the queue runs its own event loop in a
daemon thread and offers blocking calls (``publish``, ``fetch``, and ``ack``/``nak`` on each
delivery) that any thread may make.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass

from shared.limits import check_queue_body

log = logging.getLogger("targetfuse.queue")
DEFAULT_STREAM = "TARGETFUSE_TILES"
DEFAULT_PREFIX = "targetfuse.tiles"


def nats_auth(user: str | None, password: str | None) -> dict:
    """nats.connect's credentials: a user and password (the segment's NATS has a user for
    stations and one for workers, each allowed only its subjects), none when not given."""
    return {"user": user, "password": password} if user else {}


@dataclass
class Delivery:
    scene_id: str
    tile_index: int
    attempts: int  # this is delivery number ``attempts`` of the message
    _msg: object
    _queue: NatsTileQueue

    def ack(self) -> None:
        self._queue._call(self._msg.ack())

    def nak(self, delay_s: float = 1.0) -> None:
        self._queue._call(self._msg.nak(delay=delay_s))

    def term(self) -> None:
        """Never deliver this message again (its tile is quarantined)."""
        self._queue._call(self._msg.term())


class NatsTileQueue:
    def __init__(self, url: str, *, stream: str = DEFAULT_STREAM, prefix: str = DEFAULT_PREFIX,
                 durable: str = "counters", ack_wait_s: float = 60.0, max_deliver: int = 5,
                 timeout_s: float = 30.0, user: str | None = None,
                 password: str | None = None):
        self.url, self.stream, self.prefix, self.durable = url, stream, prefix, durable
        self.ack_wait_s, self.max_deliver, self.timeout_s = ack_wait_s, max_deliver, timeout_s
        self.subject = f"{prefix}.ready"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="nats-loop")
        self._thread.start()
        self._sub = None
        self.recreated = 0  # times this process found the stream missing and made it
        self._checked = 0.0
        self._auth = nats_auth(user, password)
        self.dropped = 0  # messages that were not "tile ready" work (garbage on the queue)
        self._fetch_lock = threading.Lock()
        try:
            self._call(self._connect())
        except Exception:
            self.close()
            raise

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout_s + 5)

    async def _connect(self) -> None:
        import nats
        from nats.js.api import ConsumerConfig, RetentionPolicy, StreamConfig
        from nats.js.errors import NotFoundError

        # Reconnect for ever once in, but a server that refuses the user is a clear error at
        # start, not a connection tried again until the call times out.
        refused = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            log.warning("NATS: %s", exc)
            if "authorization" in str(exc).lower() and not refused.done():
                refused.set_result(str(exc))
        connecting = asyncio.ensure_future(nats.connect(
            self.url, connect_timeout=self.timeout_s, max_reconnect_attempts=-1,
            error_cb=on_error, **self._auth))
        await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            who = f"user {self._auth['user']!r}" if self._auth else "a client without a user"
            raise PermissionError(f"the NATS server at {self.url} refused {who} "
                                  f"({refused.result()}): check nats_user and "
                                  "nats_password_file")
        self._nc = connecting.result()
        self._js = self._nc.jetstream(timeout=self.timeout_s)
        self._stream_config = StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.>"],
            retention=RetentionPolicy.WORK_QUEUE, duplicate_window=120.0)
        self._not_found = NotFoundError
        await self._ensure_stream()
        self._consumer = ConsumerConfig(durable_name=self.durable,
                                        ack_wait=self.ack_wait_s,
                                        max_deliver=self.max_deliver)

    async def _ensure_stream(self) -> bool:
        """Make the stream when it is missing (first start, or deleted under the segment:
        whoever finds it missing makes it again); True when it was made now."""
        try:
            await self._js.stream_info(self.stream)
            return False
        except self._not_found:
            try:
                await self._js.add_stream(self._stream_config)
            except Exception:  # noqa: BLE001 - another process made it at the same moment
                await self._js.stream_info(self.stream)
            self._sub = None  # the durable consumer went with the old stream
            self.recreated += 1
            return True

    def ensure_stream(self) -> bool:
        """Check the stream is there, making it again when not; True when made now (the
        tiles announced while it was missing must be announced again: ``recreated``)."""
        return bool(self._call(self._ensure_stream()))

    def publish(self, scene_id: str, tile_index: int, digest: str | None = None) -> None:
        """Announce a committed tile; returns once JetStream has stored the message (the
        stream made again first when it is missing). With ``digest`` (the tile's sha256,
        hex) a second announcement of the same tile within the duplicate window is dropped;
        without, it is always stored (the sweep's re-announcements)."""
        body = json.dumps({"scene_id": scene_id, "tile_index": tile_index}).encode()
        headers = {"Nats-Msg-Id": f"{scene_id}:{tile_index}:{digest}"} if digest else None

        async def publish():
            from nats.js.errors import NoStreamResponseError

            try:
                await self._js.publish(self.subject, body, headers=headers)
            except (NoStreamResponseError, self._not_found):
                await self._ensure_stream()
                await self._js.publish(self.subject, body, headers=headers)
        self._call(publish())

    async def _fetch(self, batch: int, timeout: float):
        import nats.errors

        if self._sub is None or time.monotonic() - self._checked > 2.0:
            # A stream deleted under the workers: found within seconds and made again (by
            # whoever finds it missing: this worker, or a station that published since, in
            # which case the workers' consumer went with the old stream).
            self._checked = time.monotonic()
            if not await self._ensure_stream() and self._sub is not None:
                try:
                    await self._js.consumer_info(self.stream, self.durable)
                except self._not_found:
                    self._sub = None
                    self.recreated += 1
        if self._sub is None:
            self._sub = await self._js.pull_subscribe(self.subject, durable=self.durable,
                                                      stream=self.stream,
                                                      config=self._consumer)
        try:
            return await self._sub.fetch(batch, timeout=timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            # Nothing to count in time (nats-py raises either, depending on where the wait
            # ended): an empty batch, not a failure.
            return []

    def fetch(self, batch: int = 16, timeout_s: float = 1.0) -> list[Delivery]:
        """Up to ``batch`` tiles to count (fewer, or none, after ``timeout_s``)."""
        with self._fetch_lock:
            msgs = self._call(self._fetch(batch, timeout_s))
        out = []
        for m in msgs:
            try:  # checked like a wire message (shared.limits): anything else is dropped
                key, index = check_queue_body(json.loads(m.data))
                out.append(Delivery(key, index, m.metadata.num_delivered, m, self))
            except (ValueError, KeyError, TypeError, RecursionError):
                self.dropped += 1
                self._call(m.term())  # not ours to count: never again
        return out

    def pending(self) -> int:
        """Messages not yet acknowledged (the backlog)."""
        async def info():
            return (await self._js.stream_info(self.stream)).state.messages
        return int(self._call(info()))

    def consumer_state(self) -> dict[str, int]:
        """The workers' consumer: messages waiting for a worker (``pending``), fetched by
        one and not acknowledged yet (``ack_pending``: being counted, or held by a worker
        that died, until ``ack_wait_s``), delivered again and not acknowledged yet
        (``redelivered``), and deliveries beyond the first since the stream began
        (``redeliveries``: each delivery takes a consumer sequence number, each message one
        stream sequence number, delivered in order)."""
        from nats.js.errors import NotFoundError

        async def info():
            try:
                c = await self._js.consumer_info(self.stream, self.durable)
            except NotFoundError:  # no worker has fetched yet
                return {"pending": (await self._js.stream_info(self.stream)).state.messages,
                        "ack_pending": 0, "redelivered": 0, "redeliveries": 0}
            return {"pending": c.num_pending, "ack_pending": c.num_ack_pending,
                    "redelivered": c.num_redelivered,
                    "redeliveries": (c.delivered.consumer_seq or 0)
                    - (c.delivered.stream_seq or 0)}
        return {k: int(v or 0) for k, v in self._call(info()).items()}

    def delete_stream(self) -> None:
        self._call(self._js.delete_stream(self.stream))

    def close(self) -> None:
        async def shut():
            if getattr(self, "_nc", None) is not None:
                await self._nc.close()
        try:
            if self._loop.is_running():
                self._call(shut())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

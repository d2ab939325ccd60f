"""The uplink's onboard end: pull the ground's newest update bundle inside contact windows,
within a byte budget, resuming where the last contact stopped.

The satellite stays the link's client: once per ``poll_s`` while a window is open it calls
``Offer`` (reporting the bundle version in force and the last one it refused, with why) and
hears the newest bundle the ground holds for it. A version the keeper wants (newer than the
one in force, not refused: ``Keeper.wants``) is fetched from the bytes already held
(``shared.uplink.transfer.PartialBlob``), at most the budget left in this window
(``bytes_per_window``; an always-open link renews it every ``BUDGET_PERIOD_S``), each chunk
checked against the offer (``shared.limits.check_bundle_chunk``) and stored durably as it
comes; a ground that sends more than was asked for is cut off. A complete blob whose sha256
is the offer's goes to the keeper (``onboard.bundles``), which verifies it and stages it to
apply between scenes. Calls go to the ground end of the window open now, over the
downlink's TLS and with its link key (``LinkClient.open_channel``, ``metadata``).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Protocol

import grpc

from onboard.link.client import LinkClient
from shared import limits
from shared.uplink.transfer import PartialBlob
from shared.wire import link_pb2, link_pb2_grpc

log = logging.getLogger("targetfuse.onboard.uplink")
BUDGET_PERIOD_S = 3600.0  # an always-open link's "window" for the uplink budget


class Keeper(Protocol):
    def report(self) -> tuple[int, int, str]: ...  # in force, last refused, its reason
    def wants(self, version: int) -> bool: ...
    def receive(self, blob: bytes, version: int) -> bool: ...


class UplinkPuller:
    def __init__(self, link: LinkClient, keeper: Keeper, folder, bytes_per_window: int,
                 poll_s: float = 60.0, clock=None):
        self.link, self.keeper = link, keeper
        self.partial = PartialBlob(folder)
        self.bytes_per_window, self.poll_s = int(bytes_per_window), poll_s
        self.clock = clock or link.clock
        self._spent: tuple[float, int] = (math.nan, 0)  # (window, bytes fetched in it)
        self.bytes_received = 0
        self.last_offer: dict | None = None
        self.last_result: str | None = None
        self.last_error: str | None = None

    def _window(self, now: float) -> float | None:
        w = self.link.schedule.current(now)
        if w is None:
            return None
        return w[0] if math.isfinite(w[0]) else float(math.floor(now / BUDGET_PERIOD_S))

    def budget_left(self, now: float | None = None) -> int:
        """Bytes the uplink may still fetch in the window open now (0 when closed)."""
        window = self._window(self.clock() if now is None else now)
        if window is None:
            return 0
        spent = self._spent[1] if self._spent[0] == window else 0
        return max(0, self.bytes_per_window - spent)

    def _spend(self, window: float, n: int) -> None:
        spent = self._spent[1] if self._spent[0] == window else 0
        self._spent = (window, spent + n)
        self.bytes_received += n

    def pull_once(self) -> str:
        """One call's worth of uplink; what happened: ``closed`` (no window), ``none`` (the
        ground holds nothing newer, or nothing wanted), ``budget`` (none left this window),
        ``partial`` (bytes still missing), ``corrupt`` (the bytes did not match the offer:
        fetched again), ``refused`` or ``staged`` (the keeper's verdict)."""
        self.last_result = result = self._pull()
        return result

    def _pull(self) -> str:
        now = self.clock()
        window = self._window(now)
        if window is None:
            return "closed"
        in_force, refused, reason = self.keeper.report()
        reason = "".join(c for c in reason if c.isprintable())  # the ground's rule for it
        meta = self.link.metadata
        with self.link.open_channel(self.link.target_at(now)) as channel:
            stub = link_pb2_grpc.UplinkStub(channel)
            offer = stub.Offer(link_pb2.OfferRequest(
                in_force=in_force, refused=refused, refused_reason=reason[:limits.MAX_REASON]),
                timeout=self.link.deadline_s, metadata=meta)
            limits.check_offer(offer)  # OutOfRange: the ground's offer is malformed
            self.last_offer = {"version": offer.version, "bytes": offer.size}
            if offer.version == 0 or not self.keeper.wants(offer.version):
                return "none"
            offset = self.partial.start(offer)
            want = min(self.budget_left(now), offer.size - offset)
            if offset < offer.size and want <= 0:
                return "budget"
            if want > 0:
                self._fetch(stub, offer, offset, want, window)
        try:
            blob = self.partial.complete(offer)
        except ValueError as exc:
            self.last_error = str(exc)
            log.error("%s", exc)
            return "corrupt"
        if blob is None:
            log.info("uplink bundle %s: %d of %d bytes held; the rest in a later contact",
                     offer.version, self.partial.offset, offer.size)
            return "partial"
        self.partial.clear()
        return "staged" if self.keeper.receive(blob, offer.version) else "refused"

    def _fetch(self, stub, offer, offset: int, want: int, window: float) -> None:
        call = stub.Fetch(link_pb2.FetchRequest(version=offer.version, offset=offset,
                                                max_bytes=want),
                          timeout=self.link.deadline_s, metadata=self.link.metadata)
        got = 0
        try:
            for chunk in call:
                if got + len(chunk.data) > want:
                    raise limits.OutOfRange(f"the ground sent more than the {want} bytes "
                                            "asked for")
                self.partial.append(chunk, offer)  # checked against the offer first
                got += len(chunk.data)
                self._spend(window, len(chunk.data))
        except limits.OutOfRange as exc:
            call.cancel()  # what was stored before stays; the rest next time
            self.last_error = f"bundle {offer.version}: {exc}"
            log.error("uplink: %s", self.last_error)

    def run(self, stop: threading.Event) -> None:
        """Pull every ``poll_s`` while a window is open (and wait for the next one when
        closed); a failed call is logged and tried again at the next poll."""
        while not stop.is_set():
            now = self.clock()
            if not self.link.schedule.is_open(now):
                nxt = self.link.schedule.next_open(now)
                stop.wait(self.poll_s if nxt is None else min(max(nxt - now, 0.05),
                                                              self.poll_s))
                continue
            try:
                self.pull_once()
            except grpc.RpcError as exc:
                self.last_error = f"{exc.code()}: {exc.details()}"
                log.warning("uplink call failed (%s); trying again in %.0f s",
                            self.last_error, self.poll_s)
            except ValueError as exc:  # OutOfRange included: a malformed offer
                self.last_error = str(exc)
                log.error("uplink: %s", exc)
            stop.wait(self.poll_s)

    def state(self) -> dict:
        held = self.partial.offer()
        return {"bytes_per_window": self.bytes_per_window,
                "budget_left_bytes": self.budget_left(),
                "bytes_received": self.bytes_received,
                "partial": None if held is None else {
                    "version": held.version, "bytes_held": self.partial.offset,
                    "bytes": held.size},
                "last_offer": self.last_offer, "last_result": self.last_result,
                "last_error": self.last_error, "poll_s": self.poll_s}

"""A bundle's bytes over the ``Uplink`` RPC: chunks from an offset on the ground, a resumable
file onboard.

The ground streams the serialised bundle from the offset the satellite asks for, in chunks
of at most ``shared.limits.UPLINK_CHUNK_BYTES``, no more than the bytes it was asked for
(``blob_chunks``). The satellite appends each chunk, checked against the offer it answers
(``shared.limits.check_bundle_chunk``: same version, size and sha256, the next bytes in
order), to a file that outlives a lost connection, a closed window or a restart
(``PartialBlob``): the next contact asks for the rest. Once all bytes are there their sha256
must be the offer's, else the file is dropped and the transfer starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from shared import limits
from shared.wire import link_pb2


def blob_chunks(version: int, blob: bytes, offset: int, max_bytes: int,
                chunk_bytes: int = limits.UPLINK_CHUNK_BYTES, sha256: bytes | None = None
                ) -> Iterator[link_pb2.BundleChunk]:
    """The chunks of ``blob`` from ``offset``, ``max_bytes`` at most in all; ``sha256``: the
    blob's, when the caller has it (the ground's shelf hashed it once when it opened it)."""
    if chunk_bytes < 1 or chunk_bytes > limits.UPLINK_CHUNK_BYTES:
        raise ValueError(f"chunk size must be 1-{limits.UPLINK_CHUNK_BYTES} bytes")
    digest = sha256 or hashlib.sha256(blob).digest()
    end = min(len(blob), offset + max_bytes)
    for at in range(offset, end, chunk_bytes):
        yield link_pb2.BundleChunk(version=version, total_size=len(blob), sha256=digest,
                                   offset=at, data=blob[at:min(at + chunk_bytes, end)])


class PartialBlob:
    """The bytes of one offered bundle received so far, in ``folder`` (``partial.bin`` and
    its offer, ``partial.json``), kept across connections and restarts."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data_file = self.folder / "partial.bin"
        self.meta_file = self.folder / "partial.json"

    def offer(self) -> link_pb2.BundleOffer | None:
        """The offer the bytes held belong to (None: none held)."""
        try:
            meta = json.loads(self.meta_file.read_text())
            return link_pb2.BundleOffer(version=meta["version"], size=meta["size"],
                                        sha256=bytes.fromhex(meta["sha256"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def offset(self) -> int:
        try:
            return self.data_file.stat().st_size
        except OSError:
            return 0

    def start(self, offer: link_pb2.BundleOffer) -> int:
        """Hold bytes for ``offer``: those held already when they are of the same offer (a
        resumed transfer), else none. Returns the offset to fetch from."""
        held = self.offer()
        if held is not None and held == offer and self.offset <= offer.size:
            return self.offset
        self.clear()
        tmp = self.meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": offer.version, "size": offer.size,
                                   "sha256": offer.sha256.hex()}))
        os.replace(tmp, self.meta_file)
        self.data_file.touch()
        return 0

    def append(self, chunk: link_pb2.BundleChunk, offer: link_pb2.BundleOffer) -> None:
        """Add the next chunk (checked against the offer and the bytes held; OutOfRange when
        it does not fit) durably."""
        limits.check_bundle_chunk(chunk, offer, self.offset)
        with open(self.data_file, "ab") as f:
            f.write(chunk.data)
            f.flush()
            os.fsync(f.fileno())

    def complete(self, offer: link_pb2.BundleOffer) -> bytes | None:
        """The whole blob once every byte is held and its sha256 is the offer's; None while
        bytes are missing. ValueError (and the bytes dropped) when they do not match."""
        if self.offset < offer.size:
            return None
        data = self.data_file.read_bytes()
        if len(data) != offer.size or hashlib.sha256(data).digest() != offer.sha256:
            self.clear()
            raise ValueError(f"bundle {offer.version}: the bytes received do not match the "
                             "offered sha256; fetching again")
        return data

    def clear(self) -> None:
        self.data_file.unlink(missing_ok=True)
        self.meta_file.unlink(missing_ok=True)

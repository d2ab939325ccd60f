"""Cutting a downlinked tile into chunks and putting it back together, checksum verified.

A tile's encoded bytes go down as ``TileChunk`` messages of at most ``CHUNK_BYTES`` of data
each (256 KiB: far below gRPC's default 4 MiB message limit, and small enough that a lost
connection wastes little). Every chunk carries the whole tile's sha256 and size, so the ground
can refuse a tile whose bytes do not add up before it counts anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from shared.wire import link_pb2

CHUNK_BYTES = 256 * 1024


class ChunkError(ValueError):
    """Chunks that do not make a consistent tile (wrong offsets, size or checksum)."""


def tile_chunks(scene_id: str, tile_index: int, row: int, col: int, data: bytes,
                quality: int, *, codec: int = link_pb2.JPEG, sent_gsd_m: float = 0.0,
                resized: bool = True, chunk_bytes: int = CHUNK_BYTES,
                onboard_count: float | None = None, confidence: float | None = None,
                exploration: bool = False) -> list[link_pb2.TileChunk]:
    """``exploration``: the tile was drawn for exploration, not chosen by value."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk size must be >= 1 byte, got {chunk_bytes}")
    digest = hashlib.sha256(data).digest()
    offsets = range(0, max(len(data), 1), chunk_bytes)
    extra = {k: v for k, v in (("onboard_count", onboard_count), ("confidence", confidence))
             if v is not None and v == v}  # NaN: not counted onboard
    return [link_pb2.TileChunk(scene_id=scene_id, tile_index=tile_index, row=row, col=col,
                               codec=codec, quality=quality, sha256=digest,
                               total_size=len(data), offset=o, data=data[o:o + chunk_bytes],
                               sent_gsd_m=sent_gsd_m, resized=resized,
                               decision=link_pb2.DOWNLINKED, exploration=exploration,
                               **extra) for o in offsets]


@dataclass
class TileAssembly:
    """The chunks of one tile received so far."""

    total_size: int
    sha256: bytes
    parts: dict[int, bytes] = field(default_factory=dict)

    def add(self, chunk: link_pb2.TileChunk) -> bytes | None:
        """Store a chunk; the tile's bytes once complete and verified, else None."""
        if chunk.total_size != self.total_size or chunk.sha256 != self.sha256:
            raise ChunkError(f"tile {chunk.scene_id}/{chunk.tile_index}: chunk disagrees on "
                             "the tile's size or checksum")
        if chunk.offset + len(chunk.data) > self.total_size:
            raise ChunkError(f"tile {chunk.scene_id}/{chunk.tile_index}: chunk at "
                             f"{chunk.offset} runs past the tile's {self.total_size} bytes")
        self.parts[chunk.offset] = bytes(chunk.data)
        if sum(len(p) for p in self.parts.values()) < self.total_size:
            return None
        data = b"".join(self.parts[o] for o in sorted(self.parts))
        if len(data) != self.total_size or hashlib.sha256(data).digest() != self.sha256:
            raise ChunkError(f"tile {chunk.scene_id}/{chunk.tile_index}: bytes do not match "
                             "their sha256")
        return data

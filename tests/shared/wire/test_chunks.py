import os

import pytest

from shared.wire import link_pb2
from shared.wire.chunks import ChunkError, TileAssembly, tile_chunks


def test_a_tile_round_trips_through_chunks_in_any_order():
    data = os.urandom(10_000)
    chunks = tile_chunks("s1", 7, 1, 2, data, 75, chunk_bytes=4096)
    assert [len(c.data) for c in chunks] == [4096, 4096, 1808]
    # Through the wire format and back, out of order, one chunk sent twice.
    wire = [link_pb2.DownlinkMessage(seq=i, chunk=c).SerializeToString()
            for i, c in enumerate(chunks)]
    received = [link_pb2.DownlinkMessage.FromString(w).chunk for w in wire]
    asm = TileAssembly(received[0].total_size, received[0].sha256)
    assert asm.add(received[2]) is None and asm.add(received[0]) is None
    assert asm.add(received[0]) is None
    assert asm.add(received[1]) == data


def test_corrupt_chunks_are_refused():
    data = os.urandom(5000)
    chunks = tile_chunks("s1", 0, 0, 0, data, 90, chunk_bytes=2500)
    bad = link_pb2.TileChunk()
    bad.CopyFrom(chunks[1])
    bad.data = bytes([bad.data[0] ^ 1]) + bad.data[1:]
    asm = TileAssembly(chunks[0].total_size, chunks[0].sha256)
    asm.add(chunks[0])
    with pytest.raises(ChunkError, match="sha256"):
        asm.add(bad)
    lying = link_pb2.TileChunk()
    lying.CopyFrom(chunks[0])
    lying.total_size = 1
    with pytest.raises(ChunkError):
        TileAssembly(chunks[0].total_size, chunks[0].sha256).add(lying)


def test_messages_stay_far_below_the_grpc_limit():
    data = os.urandom(3 * 1024 * 1024)
    for c in tile_chunks("s", 0, 0, 0, data, 90):
        assert link_pb2.DownlinkMessage(chunk=c).ByteSize() < 1024 * 1024

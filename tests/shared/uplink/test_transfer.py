"""A bundle's bytes over the uplink: chunks from an offset, within the bytes asked for; a
transfer cut short resumes where it stopped; every chunk and offer field is checked."""

from __future__ import annotations

import hashlib

import pytest

from shared import limits
from shared.uplink.transfer import PartialBlob, blob_chunks
from shared.wire import link_pb2

BLOB = bytes(range(256)) * 4000  # 1,024,000 bytes: four chunks


def offer(blob=BLOB, version=5):
    return link_pb2.BundleOffer(version=version, size=len(blob),
                                sha256=hashlib.sha256(blob).digest())


def test_chunks_cover_the_range_asked_for_and_no_more():
    chunks = list(blob_chunks(5, BLOB, 1000, 300_000))
    assert [c.offset for c in chunks] == [1000, 1000 + limits.UPLINK_CHUNK_BYTES]
    assert sum(len(c.data) for c in chunks) == 300_000
    assert b"".join(c.data for c in chunks) == BLOB[1000:301_000]
    assert list(blob_chunks(5, BLOB, len(BLOB), 10)) == []


def test_a_truncated_transfer_resumes_from_the_bytes_held(tmp_path):
    o = offer()
    part = PartialBlob(tmp_path)
    assert part.start(o) == 0
    for c in blob_chunks(5, BLOB, 0, 400_000):  # the window closes after 400 kB
        part.append(c, o)
    assert part.complete(o) is None
    part = PartialBlob(tmp_path)  # a restart (or the next contact)
    at = part.start(o)
    assert at == 400_000
    for c in blob_chunks(5, BLOB, at, 10 << 20):
        part.append(c, o)
    assert part.complete(o) == BLOB


def test_a_new_offer_drops_the_bytes_of_the_old_one(tmp_path):
    part = PartialBlob(tmp_path)
    part.start(offer())
    part.append(next(blob_chunks(5, BLOB, 0, 100)), offer())
    other = offer(BLOB[::-1], version=6)
    assert part.start(other) == 0 and part.offset == 0


def test_chunks_that_do_not_fit_the_offer_are_refused(tmp_path):
    o = offer()
    part = PartialBlob(tmp_path)
    part.start(o)
    first = next(blob_chunks(5, BLOB, 0, 1000))
    cases = [
        (link_pb2.BundleChunk(version=6, total_size=o.size, sha256=o.sha256, offset=0,
                              data=b"x"), "disagrees"),
        (link_pb2.BundleChunk(version=5, total_size=o.size + 1, sha256=o.sha256, offset=0,
                              data=b"x"), "disagrees"),
        (link_pb2.BundleChunk(version=5, total_size=o.size, sha256=o.sha256, offset=10,
                              data=b"x"), "expected the bytes from 0"),
        (link_pb2.BundleChunk(version=5, total_size=o.size, sha256=o.sha256, offset=0,
                              data=b""), "data must be"),
        (link_pb2.BundleChunk(version=5, total_size=o.size, sha256=o.sha256, offset=0,
                              data=b"x" * (limits.UPLINK_CHUNK_BYTES + 1)), "data must be"),
    ]
    for chunk, message in cases:
        with pytest.raises(limits.OutOfRange, match=message):
            part.append(chunk, o)
    part.append(first, o)
    assert part.offset == 1000


def test_bytes_that_do_not_match_the_offered_sha256_are_dropped(tmp_path):
    o = offer()
    part = PartialBlob(tmp_path)
    part.start(o)
    evil = BLOB[:-1] + b"\x00"  # same size, other bytes, chunks claiming the offer's digest
    for c in blob_chunks(5, evil, 0, 10 << 20):
        c.sha256 = o.sha256
        part.append(c, o)
    with pytest.raises(ValueError, match="do not match"):
        part.complete(o)
    assert part.offset == 0 and part.offer() is None


def test_offers_and_requests_are_checked():
    limits.check_offer(link_pb2.BundleOffer())  # nothing offered
    for bad, message in [
        (link_pb2.BundleOffer(version=1, size=0, sha256=b"x" * 32), "size"),
        (link_pb2.BundleOffer(version=1, size=limits.MAX_BUNDLE_BYTES + 1, sha256=b"x" * 32),
         "size"),
        (link_pb2.BundleOffer(version=1, size=10, sha256=b"x"), "sha256"),
        (link_pb2.BundleOffer(version=0, size=10), "no size"),
        (link_pb2.BundleOffer(version=limits.MAX_BUNDLE_VERSION + 1, size=10,
                              sha256=b"x" * 32), "version"),
    ]:
        with pytest.raises(limits.OutOfRange, match=message):
            limits.check_offer(bad)
    with pytest.raises(limits.OutOfRange, match="past the bundle"):
        limits.check_fetch_request(link_pb2.FetchRequest(version=1, offset=11, max_bytes=1), 10)
    with pytest.raises(limits.OutOfRange, match="max_bytes"):
        limits.check_fetch_request(link_pb2.FetchRequest(version=1, offset=0), 10)
    with pytest.raises(limits.OutOfRange, match="refused_reason"):
        limits.check_offer_request(link_pb2.OfferRequest(refused=3, refused_reason="a\x00b"))
    with pytest.raises(limits.OutOfRange, match="header bundle_version"):
        limits.check_header(link_pb2.SceneHeader(
            scene_id="s", grid=link_pb2.TileGrid(width=10, height=10, tile_size=10, rows=1,
                                                 cols=1),
            bundle_version=limits.MAX_BUNDLE_VERSION + 1))

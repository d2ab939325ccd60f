"""Whatever bytes arrive, the intake's and the link's decoders answer with a clear refusal or
a valid result, never another exception (hypothesis draws the inputs)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ground.link_server import receive
from ground.store import SQLiteStore
from onboard.intake import IntakeError, parse_metadata
from shared.pipeline.codec import decode_tile, encode_tile
from shared.wire import link_pb2

JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers()
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["scene_id", "gsd_m", "capture_time", "geotransform", "crs",
                        "classes", "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=5) | JSON)
def test_any_metadata_is_accepted_or_refused_with_a_4xx(value):
    try:
        meta = parse_metadata(json.dumps(value))
    except IntakeError as exc:
        assert 400 <= exc.status < 500
    else:
        assert meta.scene_id is None or isinstance(meta.scene_id, str)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_metadata_text_is_accepted_or_refused_with_a_4xx(text):
    try:
        parse_metadata(text)
    except IntakeError as exc:
        assert 400 <= exc.status < 500


GOOD = encode_tile(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8), 80)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.builds(
    lambda i, b: GOOD[:i] + b + GOOD[i + len(b):], st.integers(0, len(GOOD) - 1),
    st.binary(min_size=1, max_size=8)))
def test_any_tile_bytes_decode_or_raise_value_error(data):
    try:
        img = decode_tile(data)
    except ValueError:
        return
    assert img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) <= 4096


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_wire_message_gets_an_answer(tmp_path, data):
    store = SQLiteStore(tmp_path / "g.db")
    try:
        msg = link_pb2.DownlinkMessage.FromString(data)
    except Exception:  # noqa: BLE001 - not a message at all: gRPC refuses it before us
        return
    ack = receive(store, msg)
    assert ack.status in (link_pb2.Ack.COMMITTED, link_pb2.Ack.PARTIAL, link_pb2.Ack.REJECTED)
    store.close()

"""One rule for every number that crosses an interface: REST metadata, STAC Items, the link's
messages and the ground segment's queue.

Every number must be finite and within the range a real sensor or scene has: a ground sample
distance of ``GSD_M`` (0.01-100 m/px), a count no larger than a tile can hold, a CRS PROJ
knows, a geotransform of sane magnitude that is not singular. The rule is checked at the
first boundary an input meets (the onboard intake for metadata and STAC, the ground's link
end for every part, the counting workers for every queue message), and the onboard side
checks what it is about to send with the same functions, so what one side produces the other
accepts. A breach raises :class:`OutOfRange` (a ``ValueError``) whose text names the field
and the range.

It also bounds the work one tile can cause on the ground (``tile_inputs`` against
``MAX_INPUTS_PER_TILE``): a native tile is cut into counter inputs at its GSD, and a coarse
GSD makes each input a pixel or two, so a small tile could become thousands of inputs. The
cost is computed from the tile's size and GSD before any counting starts.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from shared.scene_ids import PATTERN as SCENE_ID
from shared.tile_grid import MAX_TILES

GSD_M = (0.01, 100.0)  # m/px: 1 cm drone frames to 100 m weather and ocean imagery
# The GSD of sent pixels: a scene's GSD times the downsampling to the counter input (or up).
SENT_GSD_M = (GSD_M[0] / 16, GSD_M[1] * 16)
MIN_OBJECT_PX = 16  # no object to count covers fewer pixels (4 x 4): bounds a tile's count
COUNT_SLACK = 0.5  # a density count may dip this far below zero (numerical noise)
MAX_TILE_PX = 1 << 16  # a tile's side in source pixels (a scene's side is at most 30,000)
MAX_SCENE_SIDE = 100_000
MAX_INPUT_SIZE = 4096
MAX_TILE_BYTES = 16 << 20  # one encoded downlinked tile
MAX_ENERGY_J = 1e9
MAX_INFERENCES_PER_TILE = 64
MAX_INPUTS_PER_TILE = 64  # counter inputs one received tile may become on the ground
MAX_TEXT = 256  # model names, capture times, class names
COORD_ABS = 1e9  # a geotransform's coefficients: metres of any projected CRS, or degrees
MAX_CLASSES = 16


class OutOfRange(ValueError):
    """A number (or name) outside the range any real input has."""


def finite(value: object, what: str, lo: float, hi: float) -> float:
    """``value`` as a float within [lo, hi], else OutOfRange naming ``what``."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OutOfRange(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise OutOfRange(f"{what} must be finite, got {v}")
    if not lo <= v <= hi:
        raise OutOfRange(f"{what} must be within [{lo:g}, {hi:g}], got {v:g}")
    return v


def check_gsd(value: object, what: str = "gsd_m") -> float:
    return finite(value, f"{what} (m/px)", *GSD_M)


def max_count(tile_side: int) -> float:
    """The most objects a square tile of ``tile_side`` source pixels can hold."""
    return max(1.0, tile_side * tile_side / MIN_OBJECT_PX)


def check_count(value: object, tile_side: int, what: str = "count") -> float:
    return finite(value, what, -COUNT_SLACK, max_count(tile_side))


def check_confidence(value: object, what: str = "confidence") -> float:
    return finite(value, what, 0.0, 1.0)


@lru_cache(maxsize=256)
def _proj_knows(crs: str) -> bool:
    try:
        from pyproj import CRS  # the ground has pyproj

        try:
            CRS.from_user_input(crs)
            return True
        except Exception:  # noqa: BLE001 - pyproj raises CRSError and others
            return False
    except ImportError:
        from rasterio.crs import CRS  # onboard: GDAL's PROJ

        try:
            CRS.from_string(crs)
            return True
        except Exception:  # noqa: BLE001
            return False


LOCAL_CRS = ("", "local")


def check_crs(crs: object, what: str = "crs") -> str:
    """A CRS PROJ knows (an EPSG code, WKT, PROJ string), or "local" / "" (none)."""
    if not isinstance(crs, str) or len(crs) > 4096:
        raise OutOfRange(f"{what} must be a CRS name")
    if crs in LOCAL_CRS:
        return crs
    if re.fullmatch(r"(?i)epsg:\s*0*", crs) or not _proj_knows(crs):
        raise OutOfRange(f"{what}: {crs[:64]!r} is not a CRS PROJ knows")
    return crs


def check_geotransform(gt: object, what: str = "geotransform") -> tuple[float, ...]:
    """Six finite coefficients of magnitude at most ``COORD_ABS``, pixel sizes non-zero, not
    singular."""
    try:
        values = list(gt)  # type: ignore[call-overload]
    except TypeError:
        raise OutOfRange(f"{what} must be 6 numbers") from None
    if len(values) != 6:
        raise OutOfRange(f"{what} must be 6 numbers, got {len(values)}")
    out = tuple(finite(v, f"{what}[{k}]", -COORD_ABS, COORD_ABS) for k, v in enumerate(values))
    det = out[1] * out[5] - out[2] * out[4]
    if not math.isfinite(det) or abs(det) < 1e-24:
        raise OutOfRange(f"{what} is singular (no pixel size)")
    return out


def check_bbox(box: object, what: str = "bbox") -> list[float]:
    """A STAC bbox: 4 (or 6, with heights) finite WGS84 numbers, longitudes and latitudes in
    range."""
    if not isinstance(box, list | tuple) or len(box) not in (4, 6):
        raise OutOfRange(f"{what} must be 4 or 6 numbers")
    lon = (0, 2) if len(box) == 4 else (0, 3)
    lat = (1, 3) if len(box) == 4 else (1, 4)
    out = [finite(v, f"{what}[{k}]", -1e7, 1e7) for k, v in enumerate(box)]
    for k in lon:
        finite(out[k], f"{what}[{k}] (longitude)", -180.0, 180.0)
    for k in lat:
        finite(out[k], f"{what}[{k}] (latitude)", -90.0, 90.0)
    return out


def _text(value: str, what: str, limit: int = MAX_TEXT) -> None:
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise OutOfRange(f"{what} must be printable text of at most {limit} characters")


# --- the link's messages (shared.wire.link_pb2), checked by the ground as they arrive and
# by the onboard side before it queues them ---------------------------------------------------

def check_header(h) -> None:
    """A ``SceneHeader``: its id, grid, GSD, footprint, classes and names."""
    if not isinstance(h.scene_id, str) or SCENE_ID.fullmatch(h.scene_id) is None:
        raise OutOfRange("scene id: 1-128 letters, digits, '_', '.', '-', starting with a "
                         "letter or digit")
    g = h.grid
    if not (1 <= g.tile_size <= MAX_TILE_PX and 1 <= g.width <= MAX_SCENE_SIDE
            and 1 <= g.height <= MAX_SCENE_SIDE):
        raise OutOfRange(f"header grid: tile size 1-{MAX_TILE_PX} px, scene sides 1-"
                         f"{MAX_SCENE_SIDE} px")
    if g.rows < 1 or g.cols < 1 or g.rows * g.cols > MAX_TILES:
        raise OutOfRange(f"header needs a tile grid of 1 to {MAX_TILES} tiles")
    if g.rows != math.ceil(g.height / g.tile_size) or g.cols != math.ceil(g.width /
                                                                          g.tile_size):
        raise OutOfRange("header grid: rows and columns must cover the scene at its tile size")
    if h.HasField("gsd_m"):
        check_gsd(h.gsd_m, "header gsd_m")
    if h.input_size > MAX_INPUT_SIZE:
        raise OutOfRange(f"header input_size must be at most {MAX_INPUT_SIZE}")
    check_bundle_version(h.bundle_version, "header bundle_version", zero=True)
    if h.HasField("footprint"):
        check_geotransform(h.footprint.geotransform, "header footprint geotransform")
        check_crs(h.footprint.crs, "header footprint crs")
    if len(h.classes) > MAX_CLASSES:
        raise OutOfRange(f"header names at most {MAX_CLASSES} classes")
    if len(set(h.classes)) != len(h.classes) or any(not c for c in h.classes):
        raise OutOfRange("header classes must be distinct, non-empty names")
    for name, value in (("capture_time", h.capture_time), ("onboard_model", h.onboard_model),
                        ("ground_model", h.ground_model), ("policy", h.policy),
                        *(("class", c) for c in h.classes)):
        _text(value, f"header {name}")


_REUSED = re.compile(r"(tile:[0-9]{1,9}|scene:" + SCENE_ID.pattern + r")")


_DOWNLINKED = 2  # link_pb2.DOWNLINKED (the messages are checked without importing them)


def check_summary(s, header) -> None:
    """A ``SceneSummary`` against its scene's header: every tile once, in order, each count
    finite and within what a tile can hold, one class count per class."""
    g = header.grid
    n = g.rows * g.cols
    if len(s.tiles) != n or any(t.index != k for k, t in enumerate(s.tiles)):
        raise OutOfRange(f"summary must list all {n} tiles in order")
    width = max(len(header.classes), 1)
    side = g.tile_size
    for t in s.tiles:
        if t.decision == 0 or t.decision > 5:
            raise OutOfRange(f"tile {t.index}: unknown decision")
        if t.HasField("onboard_count"):
            check_count(t.onboard_count, side, f"tile {t.index} onboard_count")
        if t.HasField("confidence"):
            check_confidence(t.confidence, f"tile {t.index} confidence")
        if len(t.class_counts) not in (0, width):
            raise OutOfRange(f"tile {t.index}: class counts must match the header's {width} "
                             "classes")
        for c in t.class_counts:
            check_count(c, side, f"tile {t.index} class_counts")
        if t.quality > 100:
            raise OutOfRange(f"tile {t.index}: quality must be 0-100")
        if t.exploration and t.decision != _DOWNLINKED:
            raise OutOfRange(f"tile {t.index}: only a downlinked tile can be an exploration "
                             "tile")
        if t.reused_from and _REUSED.fullmatch(t.reused_from) is None:
            raise OutOfRange(f"tile {t.index}: reused_from must be tile:<index> or "
                             "scene:<id>")
    finite(s.energy_j, "summary energy_j", 0.0, MAX_ENERGY_J)
    if s.downlink_bytes > n * MAX_TILE_BYTES or \
            s.onboard_inferences > n * MAX_INFERENCES_PER_TILE:
        raise OutOfRange("summary downlink_bytes or onboard_inferences beyond the scene's "
                         "tiles")


def check_chunk(c, header) -> None:
    """A ``TileChunk`` against its scene's header (its bytes are checked as they assemble:
    ``shared.wire.chunks``)."""
    g = header.grid
    if c.tile_index >= g.rows * g.cols:
        raise OutOfRange(f"tile {c.tile_index} is outside the scene's grid")
    if (c.row, c.col) != divmod(c.tile_index, g.cols):
        raise OutOfRange(f"tile {c.tile_index}: row and column disagree with its index")
    if len(c.sha256) != 32 or c.total_size > MAX_TILE_BYTES or \
            c.offset + len(c.data) > c.total_size:
        raise OutOfRange(f"tile {c.tile_index}: malformed chunk")
    if not 1 <= c.quality <= 100:
        raise OutOfRange(f"tile {c.tile_index}: quality must be 1-100")
    if c.sent_gsd_m != 0.0:  # 0: unknown
        finite(c.sent_gsd_m, f"tile {c.tile_index} sent_gsd_m (m/px)", *SENT_GSD_M)
    if c.HasField("onboard_count"):
        check_count(c.onboard_count, g.tile_size, f"tile {c.tile_index} onboard_count")
    if c.HasField("confidence"):
        check_confidence(c.confidence, f"tile {c.tile_index} confidence")


def check_message(msg, header=None) -> None:
    """Any ``DownlinkMessage`` (the header for a summary or chunk: its scene's)."""
    kind = msg.WhichOneof("payload")
    if kind == "header":
        check_header(msg.header)
    elif kind == "summary":
        check_summary(msg.summary, header)
    elif kind == "chunk":
        check_chunk(msg.chunk, header)
    else:
        raise OutOfRange("empty message")


# --- the work one tile can cause on the ground ---------------------------------------------

def tile_inputs(width: int, height: int, sent_gsd_m: float | None, resized: bool,
                input_size: int, model_gsd_m: float | None) -> int:
    """How many counter inputs a received tile becomes: one when sent resized to the
    counter's input, else the tile cut at the size that makes one input at the counter's
    GSD (``shared.preprocess.tile_px``)."""
    if resized:
        return 1
    from shared.preprocess import tile_px

    t = tile_px(input_size, model_gsd_m, sent_gsd_m or None)
    return math.ceil(width / t) * math.ceil(height / t)


def check_tile_work(width: int, height: int, sent_gsd_m: float | None, resized: bool,
                    input_size: int, model_gsd_m: float | None,
                    bound: int = MAX_INPUTS_PER_TILE) -> int:
    n = tile_inputs(width, height, sent_gsd_m, resized, input_size, model_gsd_m)
    if n > bound:
        raise OutOfRange(f"a {width}x{height} px tile at {sent_gsd_m:g} m/px would be {n} "
                         f"counter inputs, more than the {bound} one tile may cost")
    return n


# --- the ground segment's queue --------------------------------------------------------------

# A scene's key on the ground: its id, qualified by its sender's name (ground.store).
SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def check_queue_body(body: object) -> tuple[str, int]:
    """A "tile ready" message: exactly ``{"scene_id": <key>, "tile_index": <0..MAX_TILES)>}``
    (the key: ``[sender:]scene id``)."""
    if not isinstance(body, dict) or set(body) != {"scene_id", "tile_index"}:
        raise OutOfRange("a queue message is {scene_id, tile_index}")
    key, index = body["scene_id"], body["tile_index"]
    if not isinstance(key, str) or not valid_key(key):
        raise OutOfRange("queue message: scene_id is not a scene key")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_TILES:
        raise OutOfRange(f"queue message: tile_index must be an integer in [0, {MAX_TILES})")
    return key, index


def valid_key(key: str) -> bool:
    sender, _, scene = key.rpartition(":")
    return SCENE_ID.fullmatch(scene) is not None and (
        not _ or SENDER.fullmatch(sender) is not None)


# --- the uplink (ground -> satellite): update bundles (shared.uplink), checked by the
# satellite on every message it pulls and by the ground on every request ------------------

# One serialised update bundle: calibration and error model are tens to hundreds of kB, the
# shipped onboard counter 0.9 MB (int8) or 2.9 MB (fp32); room for a counter ten times larger.
MAX_BUNDLE_BYTES = 32 << 20
MAX_BUNDLE_VERSION = (1 << 31) - 1
UPLINK_CHUNK_BYTES = 256 << 10  # of one BundleChunk's data, as the downlink's tile chunks
MAX_MANIFEST_BYTES = 64 << 10
MAX_REASON = 1024  # a refusal's reason, reported back to the ground


def check_bundle_version(value: object, what: str = "bundle version",
                         zero: bool = False) -> int:
    """A bundle version: an integer in [1, MAX_BUNDLE_VERSION] (0 too when ``zero``: none /
    the shipped files)."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not (0 if zero else 1) <= value <= MAX_BUNDLE_VERSION:
        raise OutOfRange(f"{what} must be an integer in [{0 if zero else 1}, "
                         f"{MAX_BUNDLE_VERSION}], got {value!r}")
    return value


def check_offer_request(r) -> None:
    """An ``OfferRequest`` (the ground checks what a satellite reports)."""
    check_bundle_version(r.in_force, "offer request in_force", zero=True)
    check_bundle_version(r.refused, "offer request refused", zero=True)
    _text(r.refused_reason, "offer request refused_reason", MAX_REASON)


def check_offer(o) -> None:
    """A ``BundleOffer`` (the satellite checks what the ground offers): version 0 offers
    nothing; else a size within ``MAX_BUNDLE_BYTES`` and a 32-byte sha256."""
    check_bundle_version(o.version, "offer version", zero=True)
    if o.version == 0:
        if o.size or o.sha256:
            raise OutOfRange("an offer of no bundle (version 0) carries no size or sha256")
        return
    if not 1 <= o.size <= MAX_BUNDLE_BYTES:
        raise OutOfRange(f"offer size must be 1-{MAX_BUNDLE_BYTES} bytes, got {o.size}")
    if len(o.sha256) != 32:
        raise OutOfRange("offer sha256 must be 32 bytes")


def check_fetch_request(r, size: int) -> None:
    """A ``FetchRequest`` against the size of the bundle it names (the ground's check)."""
    check_bundle_version(r.version, "fetch version")
    if r.offset > size:
        raise OutOfRange(f"fetch offset {r.offset} is past the bundle's {size} bytes")
    if r.max_bytes < 1:
        raise OutOfRange("fetch max_bytes must be at least 1")


def check_bundle_chunk(c, offer, offset: int) -> None:
    """A ``BundleChunk`` against the offer it answers and the offset the satellite holds up
    to: the same version, size and sha256, the next bytes in order, at most
    ``UPLINK_CHUNK_BYTES`` of them, none past the end."""
    if c.version != offer.version or c.total_size != offer.size or c.sha256 != offer.sha256:
        raise OutOfRange("bundle chunk disagrees with the offer on version, size or sha256")
    if c.offset != offset:
        raise OutOfRange(f"bundle chunk at {c.offset}, expected the bytes from {offset}")
    if not 1 <= len(c.data) <= UPLINK_CHUNK_BYTES:
        raise OutOfRange(f"bundle chunk data must be 1-{UPLINK_CHUNK_BYTES} bytes, got "
                         f"{len(c.data)}")
    if c.offset + len(c.data) > c.total_size:
        raise OutOfRange("bundle chunk runs past the bundle's size")

"""Scene intake: check an upload before decoding it, and persist it before acknowledging.

Checks, in order, each failing with the HTTP status a client can act on:
the work queue has room (429, with Retry-After); the metadata is JSON with known fields and
sane values, or a valid STAC Item (``onboard.stac_intake``: 422); the body stays under
``max_upload_bytes`` while it streams to disk (413);
its first bytes are a PNG, JPEG or TIFF (415); the header's pixel dimensions are readable
(400) and under ``max_pixels`` (413); a PNG or JPEG is large enough to hold that many
pixels (413: a small file declaring a huge image is a decompression bomb) and, when it can
only be decoded whole (interlaced PNG, progressive JPEG), under the memory-derived
``whole_decode_pixels`` (413, suggesting GeoTIFF: the others are decoded by strips); the
file is complete (PNG IEND, JPEG end marker, the TIFF's last block: 400); the scene's job
resolves (``onboard.scene_job``: GSD from the metadata or the GeoTIFF's own georeference, and
the tiles it would be cut into fit one scene on the link and the memory limit: 413); its
pixels decode (``onboard.decodable``: a
PNG's CRCs and its whole compressed stream, a JPEG at 1/8 scale: 400). Only then does the
file move into the scene's folder and the scene get its record: the 202 answer comes after
both are on disk.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from onboard import decodable, stac_intake
from onboard.scene_job import SceneRefused, TileRule, resolve
from onboard.scene_metadata import IntakeError, SceneMetadata
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.errors import public
from shared.imageio import decodable_by_rows, header_size

SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}


def sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def _no_constant(name: str):
    """JSON has no NaN or Infinity (Python's parser takes them): refused at the door."""
    raise ValueError(f"{name} is not a number JSON allows")


def parse_metadata(text: str | None) -> SceneMetadata:
    if not text:
        return SceneMetadata()
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        if "is not a number" in str(exc):
            raise IntakeError(422, f"metadata: {exc}") from None
        raise IntakeError(422, f"metadata is not valid JSON: {exc}") from exc
    except RecursionError:  # e.g. 50,000 nested brackets: the parser's stack runs out
        raise IntakeError(422, "metadata is nested too deeply") from None
    if not isinstance(raw, dict):
        raise IntakeError(422, "metadata must be a JSON object")
    if stac_intake.looks_like_item(raw):
        return stac_intake.from_item(raw)
    try:
        return SceneMetadata(**raw)
    except ValidationError as exc:  # each wrong field and why, without pydantic's URLs
        raise IntakeError(422, "metadata: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'metadata'}: "
            f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())) from None
    except ValueError as exc:
        raise IntakeError(422, f"metadata: {exc}") from exc


def check_complete(path: Path, kind: str) -> None:
    """Refuse truncated files without decoding them: a PNG ends with its IEND chunk, a JPEG
    with its end-of-image marker, and a TIFF's last block must be readable."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 12))
        tail = fh.read()
    if kind == "png" and b"IEND" not in tail:
        raise IntakeError(400, "the PNG is truncated (no IEND chunk)")
    if kind == "jpeg" and not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise IntakeError(400, "the JPEG is truncated (no end-of-image marker)")
    if kind == "tiff":
        try:
            import rasterio
            from rasterio.windows import Window

            with rasterio.open(path) as src:
                src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
        except Exception as exc:  # noqa: BLE001
            raise IntakeError(400, f"the TIFF is truncated or corrupt: {public(exc)}") from exc


def pixel_size(path: Path, kind: str) -> tuple[int, int]:
    """(width, height) from the file's header, never decoding the pixels."""
    try:
        if kind == "tiff":
            import rasterio

            with rasterio.open(path) as src:
                odd = [d for d in src.dtypes if d != "uint8"]
                dtype = odd[0] if odd else "uint8"
                if src.count and src.colorinterp[0].name == "palette":
                    raise IntakeError(415, "the GeoTIFF is colour-mapped (a palette); the "
                                           "counter reads RGB or grey bands (expand it "
                                           "first, e.g. gdal_translate -expand rgb)")
                if dtype != "uint8":
                    # What the worker reads (bands 1-3 as RGB, or band 1 as grey) must be
                    # 8-bit: refused here rather than accepted and failed later.
                    raise IntakeError(415, f"GeoTIFF pixels are {dtype}; the counter reads "
                                           "8-bit bands (stretch to Byte first, e.g. "
                                           "gdal_translate -ot Byte -scale)")
                return src.width, src.height
        size = header_size(path)
    except IntakeError:
        raise
    except Exception as exc:  # noqa: BLE001 (any reader failure is a bad upload)
        raise IntakeError(400, f"the image header cannot be read: {public(exc)}") from exc
    if size is None:
        # e.g. a stray byte before the JPEG's frame marker: refused rather than decoded
        # whole on the request thread to find out.
        raise IntakeError(400, f"the {kind.upper()} header does not state the image size")
    return size


# The fewest bytes a file can hold w x h pixels in (a lower bound, so no real file is
# refused): deflate compresses at most 1032:1 and a PNG's samples are at least 1 bit; a
# Huffman-coded JPEG spends at least 2 bits (DC and end-of-block codes) per 8 x 8 luma block.
MIN_BITS_PER_PIXEL = {"png": 1 / 1032, "jpeg": 2 / 64}


def check_decodable(path: Path, kind: str, w: int, h: int, size: int,
                    settings: OnboardSettings) -> None:
    """A PNG or JPEG the worker can decode within the memory limit: by strips (a
    non-interlaced PNG or sequential JPEG: any size up to ``max_pixels``, in a file large
    enough to hold that many pixels), else whole, and then no more than
    ``whole_decode_pixels``."""
    fewest = math.ceil(w * h * MIN_BITS_PER_PIXEL[kind] / 8)
    if size < fewest:
        raise IntakeError(413, f"{w}x{h} pixels cannot be held in a {size}-byte "
                               f"{kind.upper()} (at least {fewest} bytes): a decompression "
                               "bomb or a corrupt header; send large scenes as a (tiled) "
                               "GeoTIFF")
    limit = settings.whole_decode_pixels()
    if w * h > limit and not decodable_by_rows(path):
        why = "interlaced" if kind == "png" else "progressive (or not Huffman-sequential)"
        raise IntakeError(413, f"{w}x{h} pixels: this {kind.upper()} is {why}, so it can "
                               f"only be decoded whole, up to {9 * w * h >> 20} MiB; the "
                               f"memory limit of {settings.memory_limit_bytes >> 20} MiB "
                               f"allows {limit} pixels decoded whole. Send it as a (tiled) "
                               "GeoTIFF, read window by window, or as a non-interlaced PNG "
                               "or baseline JPEG, decoded by strips")


def check_classes(meta: SceneMetadata, known: list[str] | None) -> None:
    """A request may name only classes the counter counts, each once."""
    if meta.classes is None or known is None:
        return
    unknown = [c for c in meta.classes if c not in known]
    if unknown:
        raise IntakeError(422, f"metadata: classes {unknown} are not counted here; the "
                          f"counter counts {known}")
    if len(set(meta.classes)) != len(meta.classes):
        raise IntakeError(422, "metadata: classes must not repeat")


def clear_incoming(settings: OnboardSettings) -> int:
    """Remove uploads a crash left half-written (nothing refers to them); at start-up."""
    removed = 0
    for leftover in (settings.data_dir / "incoming").glob("*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def accept(settings: OnboardSettings, db: ScenesDB, body: BinaryIO,
           metadata: str | None, known_classes: list[str] | None = None,
           rule: TileRule | None = None) -> str:
    """Validate and persist an upload; returns the scene id. Raises IntakeError.
    ``rule``: how the worker cuts scenes (``onboard.scene_job``; None: the tile cap is not
    checked here, the worker sizes the job)."""
    if db.queued() >= settings.queue_size:
        raise IntakeError(429, f"the work queue is full ({settings.queue_size} scenes); retry "
                          "later", retry_after=30)
    meta = parse_metadata(metadata)
    check_classes(meta, known_classes)
    if meta.scene_id and db.exists(meta.scene_id):
        raise IntakeError(409, f"scene {meta.scene_id} exists already")
    incoming = settings.data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=incoming)
    tmp = Path(tmp_name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := body.read(1 << 20):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise IntakeError(413, f"upload exceeds {settings.max_upload_bytes} bytes")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        with tmp.open("rb") as fh:
            kind = sniff(fh.read(8))
        if kind is None:
            raise IntakeError(415, "the upload is not a PNG, JPEG or GeoTIFF image")
        w, h = pixel_size(tmp, kind)
        check_complete(tmp, kind)
        if w < 1 or h < 1:
            raise IntakeError(400, f"the image has no pixels ({w}x{h})")
        if w * h > settings.max_pixels:
            raise IntakeError(413, f"{w}x{h} pixels exceed the limit of {settings.max_pixels}")
        if kind != "tiff":
            check_decodable(tmp, kind, w, h, size, settings)
        meta = stac_intake.complete(meta, tmp, kind, w, h)  # a STAC Item's size-bound fields
        try:  # GSD (the metadata's, else the file's), footprint, tile size: once, here
            job = resolve("", tmp, meta.model_dump(mode="json"), (w, h), rule,
                          georeferenced_file=kind == "tiff")
        except SceneRefused as exc:
            raise IntakeError(413, str(exc)) from None
        try:
            decodable.check(tmp, kind)  # sizes are sane now: a bounded pass over the data
        except decodable.Undecodable as exc:
            raise IntakeError(400, str(exc)) from None
        scene_id = meta.scene_id or uuid.uuid4().hex[:16]
        folder = settings.data_dir / "scenes" / scene_id
        folder.mkdir(parents=True, exist_ok=True)
        # A name of its own: a concurrent upload of the same id that loses the race below
        # deletes its file, never the winner's.
        final = folder / f"scene-{uuid.uuid4().hex[:12]}{SUFFIX[kind]}"
        shutil.move(tmp, final)
        record = {**meta.model_dump(mode="json"), "scene_id": scene_id, "width": w,
                  "height": h, "format": kind, "bytes": size}
        try:
            added = db.add(replace(job, scene_id=scene_id, path=str(final)), record,
                           queue_size=settings.queue_size)
        except sqlite3.IntegrityError as exc:
            final.unlink(missing_ok=True)
            raise IntakeError(409, f"scene {scene_id} exists already") from exc
        if not added:
            final.unlink(missing_ok=True)
            raise IntakeError(429, f"the work queue is full ({settings.queue_size} scenes); "
                              "retry later", retry_after=30)
        return scene_id
    finally:
        tmp.unlink(missing_ok=True)

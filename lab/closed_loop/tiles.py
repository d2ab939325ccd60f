"""The ground's received tiles as onboard-counter inputs: what adaptation fits and checks a
counter on (``lab.closed_loop.adapt``) and what a candidate's calibration is refit on
(``lab.closed_loop.candidate``). A tile is decoded from the JPEG it came down as and prepared
as the ground prepared it to count (``ground.counting``): a tile sent resized is one counter
input; a native tile is cut at the counter's natural size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ground.store import CountedTile, Store
from shared.counting import scene_tiles
from shared.limits import OutOfRange, check_tile_work
from shared.pipeline.codec import decode_tile
from shared.preprocess import RAW_INPUT, canvas_tile, normalise, tile_px


@dataclass
class TileData:
    """A counted tile as counter inputs: uint8 canvases (k, S, S, 3), one per counter input
    the ground counted it as, and the class channels its scene asked for (None: all)."""

    scene: str
    index: int
    exploration: bool
    ground: float
    canvases: np.ndarray
    channels: list[int] | None
    size: float = 1.0  # bytes it came down in
    quality: int = 90  # the JPEG quality it came at


def tile_data(store: Store, sender: str, card, max_tiles: int) -> list[TileData]:
    """The satellite's newest counted tiles as counter inputs (``card``: the onboard one),
    oldest first; undecodable tiles, tiles without a finite ground count and tiles whose
    work the ground would refuse are left out."""
    channels: dict[str, list[int] | None] = {}
    out = []
    for t in store.counted_tiles(sender, max_tiles):
        if not math.isfinite(t.ground_count):
            continue
        try:
            canvases = inputs_of(t, card)
        except (ValueError, OutOfRange):
            continue
        if t.scene_id not in channels:
            header = store.header(t.scene_id)
            names = list(header.classes) if header is not None else []
            channels[t.scene_id] = [card.classes.index(c) for c in names
                                    if c in card.classes] if names else None
        out.append(TileData(t.scene_id, t.tile_index, t.exploration, t.ground_count,
                            canvases, channels[t.scene_id], float(len(t.data)), t.quality))
    return out[::-1]


def inputs_of(t: CountedTile, card) -> np.ndarray:
    """A received tile as the ground counted it (``ground.counting.ground_class_counts``):
    one input as sent when resized, else cut at the counter's natural tile size."""
    img = decode_tile(t.data)
    size = card.input_size
    if t.resized:
        return canvas_tile(img, size, 1.0)[None]
    gsd = t.sent_gsd_m or None
    check_tile_work(img.shape[1], img.shape[0], gsd, False, size, card.model_gsd_m)
    natural = tile_px(size, card.model_gsd_m, gsd)
    _, tiles = scene_tiles(img, natural)
    return np.stack([canvas_tile(x, size, size / natural) for x in tiles])


def normalised(canvases: np.ndarray) -> np.ndarray:
    return np.stack([normalise(c) for c in canvases]).astype(np.float32, copy=False)


def in_convention(canvases: np.ndarray, convention: str) -> np.ndarray:
    return np.ascontiguousarray(canvases, np.uint8) if convention == RAW_INPUT \
        else normalised(canvases)


def count_scale(card) -> np.ndarray:
    """The card's per-class count scale (``TileCounter.scaled``; ones without one)."""
    scale = card.extra.get("count_scale") or {}
    return np.array([float(scale.get(c, 1.0)) for c in card.classes], np.float32)


def stand_in(store: Store, tiles: list[TileData]) -> np.ndarray:
    """How many tiles each stands for (``ground.recalibrate.stand_in_weights``): an
    exploration tile the accepted tiles of its scenes (their summaries: tiles kept onboard
    with a count), a tile sent by value itself. Scenes without a summary add none."""
    from ground.recalibrate import stand_in_weights
    from shared.wire import link_pb2

    accepted = 0
    for scene in {t.scene for t in tiles}:
        summary = store.summary(scene)
        if summary is not None:
            accepted += sum(1 for d in summary.tiles if d.decision == link_pb2.ACCEPTED
                            and d.HasField("onboard_count"))
    return stand_in_weights(np.array([t.exploration for t in tiles], bool), accepted)

"""Between the pipeline's objects and the wire messages, both ways.

The onboard side turns a :class:`~shared.pipeline.scene.ScenePlan` into the scene's header
and summary; the ground turns a summary back into the per-tile arrays aggregation takes, so
both sides aggregate with exactly the same function.
"""

from __future__ import annotations

import math

import numpy as np

from shared.annotations import Footprint
from shared.pipeline.decisions import DOWNLINK, UNCOUNTED
from shared.pipeline.selection import ACCEPT, DISCARD
from shared.wire import link_pb2

_TO_WIRE = {ACCEPT: link_pb2.ACCEPTED, DOWNLINK: link_pb2.DOWNLINKED,
            DISCARD: link_pb2.DISCARDED, UNCOUNTED: link_pb2.UNCOUNTED}


def scene_header(plan, gsd_m: float | None, footprint: Footprint | None, *,
                 capture_time: str | None, onboard_model: str, ground_model: str,
                 input_size: int, policy: str, classes: list[str] | None = None,
                 gsd_estimated: bool = False, bundle_version: int = 0
                 ) -> link_pb2.SceneHeader:
    g = plan.grid
    h = link_pb2.SceneHeader(
        scene_id=plan.scene_id, grid=link_pb2.TileGrid(width=g.width, height=g.height,
                                                       tile_size=g.tile_size, rows=g.rows,
                                                       cols=g.cols),
        capture_time=capture_time or "", onboard_model=onboard_model,
        ground_model=ground_model, input_size=input_size, policy=policy,
        classes=list(classes or []), gsd_estimated=bool(gsd_m) and gsd_estimated,
        bundle_version=bundle_version)
    if gsd_m:
        h.gsd_m = gsd_m
    if footprint is not None:
        h.footprint.CopyFrom(link_pb2.Footprint(geotransform=list(footprint.geotransform),
                                                crs=footprint.crs))
    return h


def scene_summary(plan) -> link_pb2.SceneSummary:
    d = plan.decisions
    tiles = []
    for i in range(len(plan.grid)):
        t = link_pb2.TileDecision(index=i, context=int(plan.contexts[i]))
        a = int(d.action[i])
        t.decision = link_pb2.REUSED if a == ACCEPT and plan.reused[i] else _TO_WIRE[a]
        if not math.isnan(plan.onboard[i]):
            t.onboard_count = float(plan.onboard[i])
            t.class_counts.extend(float(c) for c in plan.class_counts()[i])
        if not math.isnan(plan.confidence[i]):
            t.confidence = float(plan.confidence[i])
        if plan.reused_from[i]:
            t.reused_from = plan.reused_from[i]
        if a == DOWNLINK:
            t.quality = int(d.quality[i])
            t.exploration = d.is_explored(i)
        tiles.append(t)
    return link_pb2.SceneSummary(scene_id=plan.scene_id, tiles=tiles,
                                 energy_j=plan.ledger.total,
                                 downlink_bytes=int(d.bytes_used),
                                 onboard_inferences=plan.inferences)


def summary_arrays(summary: link_pb2.SceneSummary
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """action, onboard count (NaN: none), reused flag and context per tile."""
    back = {v: k for k, v in _TO_WIRE.items()}
    n = len(summary.tiles)
    action = np.zeros(n, np.int8)
    onboard = np.full(n, np.nan)
    reused = np.zeros(n, bool)
    contexts = np.zeros(n, np.int64)
    for t in summary.tiles:
        if t.decision == link_pb2.REUSED:
            action[t.index], reused[t.index] = ACCEPT, True
        elif t.decision in back:
            action[t.index] = back[t.decision]
        else:
            raise ValueError(f"tile {t.index}: no decision")
        if t.HasField("onboard_count"):
            onboard[t.index] = t.onboard_count
        contexts[t.index] = t.context
    return action, onboard, reused, contexts


def summary_class_counts(summary: link_pb2.SceneSummary, n_classes: int) -> np.ndarray:
    """(tiles, classes) onboard count per class, NaN where the tile has none. A tile that
    carries no class split (an older sender) puts its whole count in a single class."""
    table = np.full((len(summary.tiles), max(n_classes, 1)), np.nan)
    for t in summary.tiles:
        if len(t.class_counts):
            if len(t.class_counts) != table.shape[1]:
                raise ValueError(f"tile {t.index}: {len(t.class_counts)} class counts for "
                                 f"{table.shape[1]} classes")
            table[t.index] = list(t.class_counts)
        elif t.HasField("onboard_count") and table.shape[1] == 1:
            table[t.index, 0] = t.onboard_count
    return table


def summary_explored(summary: link_pb2.SceneSummary) -> np.ndarray:
    """(tiles,) bool: the downlinked tiles the satellite drew for exploration."""
    out = np.zeros(len(summary.tiles), bool)
    for t in summary.tiles:
        out[t.index] = t.exploration
    return out

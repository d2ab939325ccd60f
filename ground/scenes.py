"""The ground's view of each scene: its total, aggregated from what has arrived.

``scene_report`` aggregates a scene from its summary and the ground counts so far
(``counting``) with the same ``aggregate`` the simulator uses, so partial totals are visible
before the link delivers all. Per class too (``by_class``), and restricted to the classes a
reader asks for (``classes``: the total then covers those only).

How the total treats the tiles nobody counted (discarded, uncounted) is the ground's setting
(``GroundSettings.aggregation``; the pipeline's defaults unless told), not something the scene
carries: nothing the satellite decides depends on it (its plan, budgets and downlink are the
same under either treatment), and the ground aggregates every time a scene is read, from the
decisions it stored, so one rule covers every satellite's scenes, old and new, and changing
it needs nothing sent again. An experiment's choice (its pipeline.json's ``discarded`` and
``uncounted``) is deployed by setting the ground's two to the same.
"""

from __future__ import annotations

import numpy as np

from ground.store import Store
from shared.pipeline.aggregation import (
    DEFAULT_RULES,
    AggregationRules,
    aggregate,
    aggregate_classes,
)
from shared.preprocess import unknown_gsd_warning
from shared.wire.convert import summary_arrays, summary_class_counts, summary_explored

UNNAMED = "objects"  # the one class of a scene whose header names none


def scene_classes(header) -> list[str]:
    return list(header.classes) or [UNNAMED]


def scene_report(store: Store, scene_id: str, classes: list[str] | None = None, *,
                 rules: AggregationRules = DEFAULT_RULES) -> dict | None:
    """``classes``: report only these of the scene's classes (a ValueError for a class the
    scene was not counted for); ``rules``: how discarded and uncounted tiles count."""
    header = store.header(scene_id)
    if header is None:
        return None
    names = scene_classes(header)
    wanted = list(classes or names)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise ValueError(f"scene {scene_id} was counted for {', '.join(names)}; not "
                         f"{', '.join(unknown)}")
    summary = store.summary(scene_id)
    received = store.ground_counts(scene_id)
    gsd = header.gsd_m if header.HasField("gsd_m") else None
    # Never silently assumed: the satellite cut this scene's tiles at the counter's own GSD,
    # or at a GSD it estimated from the pixels.
    warnings = [] if gsd else [unknown_gsd_warning()]
    if gsd and header.gsd_estimated:
        warnings = [f"ground sample distance unknown: the satellite estimated {gsd:g} m/px "
                    "from the image"]
    report = {"scene_id": header.scene_id, "key": scene_id,
              "sender": scene_id.rpartition(":")[0], "classes": wanted,
              "tiles": header.grid.rows * header.grid.cols,
              "tile_size": header.grid.tile_size, "gsd_m": gsd,
              "gsd_estimated": bool(gsd and header.gsd_estimated), "warnings": warnings,
              # the uplink bundle whose calibration chose its tiles (0: the shipped files)
              "bundle_version": header.bundle_version,
              "summary_received": summary is not None,
              "tiles_received": len(received),
              "tiles_counted": sum(1 for c, _ in received.values() if c is not None)}
    if summary is None:
        report.update({"total": None, "complete": False})
        return report
    action, _, reused, contexts = summary_arrays(summary)
    # An exploration tile is a downlinked tile: its ground count replaces the onboard one.
    explored = summary_explored(summary)
    ground = {i: c for i, (c, _) in received.items() if c is not None and not np.isnan(c)}
    sel = [names.index(c) for c in wanted]
    class_onboard = summary_class_counts(summary, len(names))
    class_ground = store.ground_class_counts(scene_id)
    if len(names) == 1:  # no split to read: the tile's count is the class's count
        class_ground = {i: [c] for i, c in ground.items()}
    class_ground = {i: v for i, v in class_ground.items() if len(v) == len(names)}
    # The requested classes' tile counts (all of them: the scene's own totals).
    onboard = _sum_columns(class_onboard[:, sel])
    ground = {i: float(np.sum([v[k] for k in sel])) for i, v in class_ground.items()}
    agg = aggregate(action, onboard, reused, ground, contexts, rules.discarded,
                    rules.uncounted)
    per_class = aggregate_classes(names, action, class_onboard, reused, class_ground,
                                  contexts, discarded=rules.discarded,
                                  uncounted=rules.uncounted)
    onboard_only = float(np.nansum(onboard))  # what the satellite alone would report
    report.update({**agg.as_dict(), "onboard_total": round(onboard_only, 3),
                   "by_class": {c: {"total": round(per_class[c].total, 3),
                                    "onboard_total": round(float(np.nansum(
                                        class_onboard[:, names.index(c)])), 3),
                                    "by_provenance": {k: round(v, 3) for k, v in
                                                      per_class[c].by_provenance.items()}}
                                for c in wanted},
                   "energy_j": summary.energy_j, "downlink_bytes": summary.downlink_bytes,
                   "onboard_inferences": summary.onboard_inferences,
                   "tiles_explored": int(explored.sum()),
                   "per_tile": [{"index": i, "provenance": p, "count": round(float(c), 3),
                                 "onboard": None if np.isnan(onboard[i]) else
                                 round(float(onboard[i]), 3),
                                 "ground": ground.get(i),
                                 "exploration": bool(explored[i])}
                                for i, (p, c) in enumerate(zip(agg.provenance, agg.tile_counts,
                                                               strict=True))]})
    return report


def _sum_columns(table: np.ndarray) -> np.ndarray:
    """Row sums, NaN where a row has no count at all."""
    out = np.nansum(table, axis=1)
    out[np.isnan(table).all(axis=1)] = np.nan
    return out

"""The ground's view of each scene: its total, aggregated from what has arrived.

``scene_report`` aggregates a scene from its summary and the ground counts so far
(``counting``) with the same ``aggregate`` the simulator uses, so partial totals are visible
before the link delivers all.
"""

from __future__ import annotations

import numpy as np

from ground.store import Store
from shared.pipeline.aggregation import aggregate
from shared.preprocess import unknown_gsd_warning
from shared.wire.convert import summary_arrays


def scene_report(store: Store, scene_id: str, discarded: str = "onboard",
                 uncounted: str = "context") -> dict | None:
    header = store.header(scene_id)
    if header is None:
        return None
    summary = store.summary(scene_id)
    received = store.ground_counts(scene_id)
    gsd = header.gsd_m if header.HasField("gsd_m") else None
    # Never silently assumed: the satellite cut this scene's tiles at the counter's own GSD.
    warnings = [] if gsd else [unknown_gsd_warning()]
    report = {"scene_id": scene_id, "tiles": header.grid.rows * header.grid.cols,
              "tile_size": header.grid.tile_size, "gsd_m": gsd, "warnings": warnings,
              "summary_received": summary is not None,
              "tiles_received": len(received),
              "tiles_counted": sum(1 for c, _ in received.values() if c is not None)}
    if summary is None:
        report.update({"total": None, "complete": False})
        return report
    action, onboard, reused, contexts = summary_arrays(summary)
    ground = {i: c for i, (c, _) in received.items() if c is not None and not np.isnan(c)}
    agg = aggregate(action, onboard, reused, ground, contexts, discarded, uncounted)
    onboard_only = float(np.nansum(onboard))  # what the satellite alone would report
    report.update({**agg.as_dict(), "onboard_total": round(onboard_only, 3),
                   "energy_j": summary.energy_j, "downlink_bytes": summary.downlink_bytes,
                   "onboard_inferences": summary.onboard_inferences,
                   "per_tile": [{"index": i, "provenance": p, "count": round(float(c), 3),
                                 "onboard": None if np.isnan(onboard[i]) else
                                 round(float(onboard[i]), 3),
                                 "ground": ground.get(i)}
                                for i, (p, c) in enumerate(zip(agg.provenance, agg.tile_counts,
                                                               strict=True))]})
    return report

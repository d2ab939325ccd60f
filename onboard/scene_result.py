"""A planned scene's answer: what ``GET /v1/scenes/{id}`` returns once it is processed.

Per tile, its decision (``reused`` for a deduplicated tile, else what throttling chose), its
onboard count in total and per class, and its confidence (``None`` where not counted); per
scene, the tile size, the decisions' tally, the onboard totals, the energy ledger, the byte
budget (the quicklook's bytes included: they came out of it first) and the tile bytes planned
within it, the tiles drawn for exploration and their bytes, the quicklook's outcome, and
the GSD with where it came from and the warnings. Counts are rounded to 3 decimals,
confidences to 4: the answer is read, not recomputed.
"""

from __future__ import annotations

import numpy as np

from onboard.scene_job import SceneJob
from shared.pipeline.exploration import explored_bytes
from shared.pipeline.scene import ScenePlan


def decision_names(plan: ScenePlan) -> list[str]:
    """Each tile's decision as the answer and the metrics name it."""
    return [n if not r else "reused"
            for n, r in zip(plan.decisions.names(), plan.reused, strict=True)]


def _rounded(v: float, digits: int) -> float | None:
    return None if np.isnan(v) else round(float(v), digits)


def scene_result(plan: ScenePlan, job: SceneJob, classes: list[str], *, quicklook_bytes: int,
                 quicklook_report: dict) -> dict:
    """The answer for ``job`` planned as ``plan``, counted for ``classes``."""
    names = decision_names(plan)
    table = plan.class_counts()
    explored = plan.decisions.explored if plan.decisions.explored is not None else \
        np.zeros(len(plan.grid), bool)
    per_tile = [{"index": i, "decision": names[i],
                 "onboard": _rounded(plan.onboard[i], 3),
                 "onboard_by_class": None if np.isnan(plan.onboard[i]) else
                 {c: round(float(v), 3) for c, v in zip(classes, table[i], strict=True)},
                 "confidence": _rounded(plan.confidence[i], 4),
                 "exploration": bool(explored[i])} for i in range(len(plan.grid))]
    return {"tile_size": plan.tile_size, "tiles": len(plan.grid), "per_tile": per_tile,
            "tiles_by_decision": {k: names.count(k) for k in sorted(set(names))},
            "classes": classes,
            "onboard_total": round(float(np.nansum(plan.onboard)), 3),
            "onboard_by_class": {c: round(float(np.nansum(table[:, k])), 3)
                                 for k, c in enumerate(classes)},
            "onboard_inferences": plan.inferences, "energy_j": plan.ledger.report(),
            # the scene's whole budget (the quicklook's bytes, in "quicklook", come out of
            # it first) and the tile bytes planned within the rest
            "downlink_budget_bytes": int(plan.byte_budget) + quicklook_bytes,
            "downlink_bytes_planned": int(plan.decisions.bytes_used),
            # tiles drawn for exploration (shared.pipeline.exploration), and their bytes
            "exploration": {"tiles": [int(i) for i in np.flatnonzero(explored)],
                            "bytes": explored_bytes(plan.decisions, plan.sizes)},
            "quicklook": quicklook_report,
            "gsd_m": job.gsd_m, "gsd_source": job.gsd_source,
            "warnings": list(job.warnings)}

"""Choosing the pipeline's settings on validation scenes, so that test figures stay honest.

``choose`` plays every candidate setting on the tuning workload (a split's validation part)
at a few reference points (downlink budgets 2 % and 10 %, energy 1.0 and 0.5) and keeps the
one with the lowest mean relative CMAE over them. The candidates: each collaborative policy
(``value`` needs an error model), each treatment of tiles left uncounted, and adaptive
tiling on or off (growing tiles when energy runs short helps on some imagery and costs on
other). Settings the user fixed on the command line are not searched. The tile size and
the error model come from the pair's calibration files, not from here.
"""

from __future__ import annotations

from itertools import product

import numpy as np
from tqdm import tqdm

from lab.experiments.sweeps import COLLABORATIVE, Workload
from shared.pipeline.aggregation import UNCOUNTED_TREATMENTS

POINTS = ((0.02, 1.0), (0.1, 1.0), (0.02, 0.5), (0.1, 0.5))


def candidates(w: Workload, fixed: set[str]) -> list[dict]:
    cfg = w.run.cfg
    policies = [cfg.policy] if "policy" in fixed else \
        [p for p in COLLABORATIVE if p != "value" or w.run.error_model is not None]
    treatments = [cfg.uncounted] if "uncounted" in fixed else list(UNCOUNTED_TREATMENTS)
    tilings = [cfg.adaptive_tiling] if "adaptive_tiling" in fixed or w.run.tiling is None \
        else [True, False]
    return [{"policy": p, "uncounted": u, "adaptive_tiling": a}
            for p, u, a in product(policies, treatments, tilings)]


def choose(w: Workload, spec: str, fixed: set[str] = frozenset(), points=POINTS) -> dict:
    """The best candidate on ``w`` and every candidate's score."""
    scores = []
    for cand in tqdm(candidates(w, set(fixed)), desc="tuning", unit="setting"):
        cfg = w.config(cand["policy"], uncounted=cand["uncounted"],
                       adaptive_tiling=cand["adaptive_tiling"])
        errors = [w.play(cfg, b, e)["relative_cmae"] for b, e in points]
        scores.append({**cand, "mean_relative_cmae": float(np.mean(errors))})
    best = min(scores, key=lambda s: s["mean_relative_cmae"])
    return {"images": spec, "part": spec.rpartition(":")[2], "scenes": len(w.sims),
            "points": [{"budget_fraction": b, "energy_fraction": e} for b, e in points],
            "choices": {k: best[k] for k in ("policy", "uncounted", "adaptive_tiling")},
            "scores": scores}

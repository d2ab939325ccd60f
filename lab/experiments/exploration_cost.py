"""What exploration costs: CMAE at equal downlink bytes with and without it.

``sweep_exploration`` plays the collaborative configuration over a workload at one downlink
budget and energy, for each exploration share (``shared.pipeline.exploration``) and each of
several seeds (the seed draws the exploration tiles; it also seeds deduplication's
contexts, so every share is played at every seed and compared seed by seed). The budget is
the same for every share: exploration bytes come out of it, so a share's cost is the tiles
the value policy no longer sends.

``exploration_summary`` reads the rows: per share, the mean CMAE over seeds, its change
against no exploration (mean and standard error of the per-seed differences), the share of
the bytes used that went to exploration, and the exploration tiles the ground received per
scene (the evidence a recalibration is fit on).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from lab.experiments.sweeps import Workload
from shared.pipeline.exploration import check_share, explored_bytes

SHARES = (0.0, 0.02, 0.05)
SEEDS = 5


def parse_shares(text: str | None) -> tuple[float, ...]:
    """``--exploration-shares``: comma-separated shares, 0 always among them (the baseline
    every other share is compared with)."""
    if not text:
        return SHARES
    try:
        values = {check_share(float(v)) for v in text.split(",") if v.strip()}
    except ValueError as exc:
        raise ValueError(f"--exploration-shares: {exc}") from None
    return tuple(sorted(values | {0.0}))


def sweep_exploration(w: Workload, budget: float, energy: float, shares=SHARES,
                      seeds: int = SEEDS, progress: bool = True) -> list[dict]:
    """One row per (share, seed): CMAE, bytes used, exploration bytes and tiles."""
    rows = []
    jobs = [(s, seed) for seed in range(seeds) for s in shares]
    for share, seed in tqdm(jobs, desc="exploration sweep", disable=not progress):
        cfg = replace(w.run.cfg, exploration_share=share, seed=seed)
        totals, used, explored, tiles = [], 0, 0, 0
        for sim in w.sims:
            r = sim.run(cfg, budget, energy)
            totals.append(r.total)
            d = r.plan.decisions
            used += d.bytes_used
            explored += explored_bytes(d, r.plan.sizes)
            tiles += 0 if d.explored is None else int(d.explored.sum())
        err = np.abs(np.array(totals) - w.truths)
        rows.append({"exploration_share": share, "seed": seed, "budget_fraction": budget,
                     "energy_fraction": energy, "cmae": float(err.mean()),
                     "relative_cmae": float(err.mean() / max(w.truths.mean(), 1e-9)),
                     "bytes_used": used, "exploration_bytes": explored,
                     "exploration_tiles": tiles, "scenes": len(w.sims)})
    return rows


def exploration_summary(rows: list[dict]) -> dict:
    """Per share, against share 0 at the same seeds."""
    by = {(r["exploration_share"], r["seed"]): r for r in rows}
    shares = sorted({r["exploration_share"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    first = rows[0]
    out: dict = {"budget_fraction": first["budget_fraction"],
                 "energy_fraction": first["energy_fraction"], "seeds": len(seeds),
                 "scenes": first["scenes"], "shares": []}
    for s in shares:
        mine = [by[s, k] for k in seeds]
        diffs = np.array([by[s, k]["cmae"] - by[0.0, k]["cmae"] for k in seeds])
        used = sum(r["bytes_used"] for r in mine)
        out["shares"].append({
            "exploration_share": s,
            "cmae": float(np.mean([r["cmae"] for r in mine])),
            "relative_cmae": float(np.mean([r["relative_cmae"] for r in mine])),
            "cmae_change": float(diffs.mean()),
            "cmae_change_stderr": float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
            if len(diffs) > 1 else None,
            "bytes_used": used / len(seeds),
            "exploration_bytes_share": sum(r["exploration_bytes"] for r in mine) / max(used, 1),
            "exploration_tiles_per_scene": sum(r["exploration_tiles"] for r in mine)
            / (len(seeds) * max(first["scenes"], 1))})
    return out

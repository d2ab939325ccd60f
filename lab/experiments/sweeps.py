"""``targetfuse experiment``: the pipeline's sweeps over a dataset, as CSV and PNG.

Every sweep runs the offline simulator (``lab.simulator``) with the shipped
counters; scenes are counted once and reused across a sweep, and all randomness is seeded,
so the same command gives the same numbers. Sweeps:

* ``budget``: CMAE vs downlink budget for every policy and baseline (the paper's Fig. 6), at
  ample and scarce energy, with the bandwidth efficiency of each point: the bytes the
  strongest bent pipe needs for the same CMAE (interpolated on each vanilla variant's own
  curve, the fewest bytes of any) over the bytes used; when no vanilla variant reaches that
  CMAE even with every tile, the ratio is a lower bound. Baselines (``BASELINES``): random
  at the same budget; onboard-only with the collaborative run's tiling, deduplication and
  estimate for uncounted tiles, and the paper's (``-zero``); vanilla native and resized to
  the counter's input, both extrapolating from what they sent, and the paper's native
  ``-zero``; ground-only raw and with the collaborative run's ground bias correction.
* ``conf``: CMAE vs conf_p of the paper's three policies at several budgets.
* ``tiles``: relative CMAE and time per scene vs tile size, from the calibration record
  (``models/NAME/tiling.json``, made by ``targetfuse calibrate``): the paper's Fig. 4.
* ``dedup``: onboard inferences skipped and the change in relative CMAE with deduplication on
  vs off, on revisit workloads (real scenes revisited by ``revisit_real``, synthetic revisits
  with moved/added/removed objects) and on the plain (non-revisit) scenes.
* ``energy``: CMAE vs energy fraction (onboard-only, collaborative, vanilla) and the energy
  per scene by component.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lab.simulator import SceneSimulator, baseline_config
from shared.pipeline.baselines import BASELINES, FAMILIES
from shared.pipeline.config import PipelineConfig
from shared.pipeline.dedup import RevisitCache
from shared.pipeline.throttling import PAPER_POLICIES

BUDGETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 0.8, 0.9, 1.0)
COLLABORATIVE = ("value", *PAPER_POLICIES)
POLICY_ORDER = (*COLLABORATIVE, *BASELINES)
CONF_PS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


class Workload:
    """Scenes with their truth and a simulator each."""

    def __init__(self, scenes, truths, onboard, ground, run, classes=None):
        self.truths = np.asarray(truths, float)
        self.sims = [SceneSimulator(img, onboard, ground, run.energy, run.tiling,
                                    run.error_model, classes=classes) for img in scenes]
        self.run = run

    def config(self, name: str, **changes) -> PipelineConfig:
        """The settings a policy or a named baseline runs with."""
        if name in BASELINES:
            return replace(baseline_config(self.run.cfg, *BASELINES[name]), **changes)
        return replace(self.run.cfg, policy=name, **changes)

    def play(self, cfg: PipelineConfig, budget: float, energy: float,
             cache: RevisitCache | None = None, correct_ground: bool = True) -> dict:
        totals, used, raw, inferences, joules = [], 0, 0, 0, 0.0
        for sim in self.sims:
            r = sim.run(cfg, budget if cfg.policy != "onboard-only" else 0.0, energy, cache,
                        correct_ground)
            totals.append(r.total)
            used += r.plan.decisions.bytes_used
            raw += sim.raw_bytes(cfg.raw_quality)
            inferences += r.plan.inferences
            joules += r.plan.ledger.total
        err = np.abs(np.array(totals) - self.truths)
        return {"cmae": float(err.mean()), "relative_cmae": float(err.mean() /
                                                                  max(self.truths.mean(), 1e-9)),
                "bytes_used": used, "bytes_fraction": used / max(raw, 1),
                "inferences": inferences, "energy_j": joules}

    def ground_only(self, corrected: bool = False) -> float:
        """CMAE of the deep counter on every natural tile; ``corrected``: times the error
        model's ground bias correction at the raw quality (the correction the collaborative
        run's ground counts get), where the error model has one."""
        scale = self.run.error_model.scale(self.run.cfg.raw_quality) \
            if corrected and self.run.error_model else 1.0
        return float(np.mean([abs(s.ground_only * scale - t) for s, t in
                              zip(self.sims, self.truths, strict=True)]))


def strongest(rows: list[dict], family: str, **at) -> dict:
    """The row of the family's member with the lowest CMAE among ``rows`` matching ``at``."""
    pick = [r for r in rows if r["policy"] in FAMILIES[family] and
            all(np.isclose(r[k], v) for k, v in at.items())]
    if not pick:
        raise ValueError(f"no {family} rows at {at}")
    return min(pick, key=lambda r: r["cmae"])


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: round(v, 5) if isinstance(v, float) else v for k, v in r.items()})
    return path


def vanilla_bytes_for(cmae: float, vanilla: list[dict]) -> tuple[float, bool]:
    """Fraction of raw bytes vanilla needs to reach ``cmae`` (linear between sweep points),
    and whether it reaches it at all (if not: all of them, a lower bound on the need)."""
    pts = sorted((r["bytes_fraction"], r["cmae"]) for r in vanilla)
    for k, (b, c) in enumerate(pts):
        if c <= cmae:
            if k == 0:
                return b, True
            b0, c0 = pts[k - 1]
            return b0 + (b - b0) * (c0 - cmae) / (c0 - c), True
    # Not reached within the sweep: at least the most it was given (a lower bound).
    return (pts[-1][0] if pts else 1.0), False


def sweep_budget(w: Workload, energy: float, budgets=BUDGETS, progress=True) -> list[dict]:
    rows = []
    jobs = [(p, b) for p in POLICY_ORDER for b in budgets]
    for policy, b in tqdm(jobs, desc=f"budget sweep E={energy}", disable=not progress):
        r = w.play(w.config(policy), b, energy)
        rows.append({"energy_fraction": energy, "policy": policy, "budget_fraction": b, **r})
    go, go_corrected = w.ground_only(), w.ground_only(corrected=True)
    curves = {v: [r for r in rows if r["policy"] == v] for v in FAMILIES["vanilla"]}
    for r in rows:
        r["ground_only_cmae"] = go
        r["ground_only_corrected_cmae"] = go_corrected
        # Against the strongest bent pipe: the fewest bytes any vanilla variant needs.
        needs = [vanilla_bytes_for(r["cmae"], curve) for curve in curves.values()]
        need, reached = min(needs, key=lambda nr: (not nr[1], nr[0]))
        r["vanilla_bytes_fraction_needed"] = need
        r["efficiency"] = need / max(r["bytes_fraction"], 1e-9) \
            if r["policy"] not in FAMILIES["onboard-only"] and r["bytes_fraction"] > 0 \
            else float("nan")
        r["efficiency_is_lower_bound"] = not reached
    return rows


def sweep_conf(w: Workload, budgets=(0.05, 0.1, 0.25), progress=True) -> list[dict]:
    rows = []
    jobs = [(p, b, c) for p in PAPER_POLICIES for b in budgets for c in CONF_PS]
    for policy, b, cp in tqdm(jobs, desc="conf_p sweep", disable=not progress):
        cq = max(cp, w.run.cfg.conf_q)
        r = w.play(w.config(policy, conf_p=cp, conf_q=cq), b, 1.0)
        rows.append({"policy": policy, "budget_fraction": b, "conf_p": cp, "conf_q": cq, **r})
    return rows


def sweep_energy(w: Workload, budget: float = 0.1,
                 fractions=(0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0), progress=True) -> list[dict]:
    rows = []
    jobs = [(p, e) for p in ("value", "dynamic-conf", *FAMILIES["vanilla"],
                             *FAMILIES["onboard-only"]) for e in fractions]
    for policy, e in tqdm(jobs, desc="energy sweep", disable=not progress):
        r = w.play(w.config(policy), budget, e)
        rows.append({"policy": policy, "energy_fraction": e, "budget_fraction": budget, **r})
    return rows


def compute_cost_factors(w: Workload) -> dict[str, float]:
    """Multipliers of the energy model's joules per FLOP: counting a tile as cheap as sending
    it raw (the scenes' mean native tile at the raw quality), the default, ten times dearer."""
    energy = w.run.energy
    per_tile = [energy.downlink(s.raw_bytes(w.run.cfg.raw_quality) / max(1, s.tiles_natural))
                / max(energy.compute(s.flops), 1e-30) for s in w.sims]
    return {"counting costs what sending costs": float(np.mean(per_tile)), "default": 1.0,
            "counting 10x dearer": 10.0}


def sweep_compute_cost(w: Workload, budget: float = 0.1, energies=(1.0, 0.5),
                       progress=True) -> list[dict]:
    """The budget sweep's comparison at one budget under cheaper and dearer counting: which
    conclusions depend on the energy model's joules per FLOP."""
    from dataclasses import replace as dc_replace

    rows = []
    base = w.run.energy
    names = (w.run.cfg.policy, *BASELINES)
    try:
        for label, factor in compute_cost_factors(w).items():
            model = dc_replace(base, j_per_flop=base.j_per_flop * factor)
            for sim in w.sims:
                sim.set_energy(model)
            for e in energies:
                for name in tqdm(names, desc=f"{label} E={e}", disable=not progress):
                    r = w.play(w.config(name), budget, e)
                    rows.append({"compute_cost": label, "j_per_flop": model.j_per_flop,
                                 "energy_fraction": e, "budget_fraction": budget,
                                 "policy": name, **r})
    finally:
        for sim in w.sims:
            sim.set_energy(base)
    return rows


def sweep_treatments(w: Workload, budgets=(0.02, 0.1, 0.25), progress=True) -> list[dict]:
    """Aggregation options: discarded tiles (onboard count vs zero) under the paper's
    policies with a conf_p that discards, and uncounted tiles (zero vs context estimate)
    under scarce energy."""
    rows = []
    jobs = [("discarded", t, p, b, 1.0) for t in ("onboard", "zero") for p in PAPER_POLICIES
            for b in budgets]
    jobs += [("uncounted", t, w.run.cfg.policy, b, e) for t in ("zero", "context")
             for b in budgets for e in (0.5, 0.75)]
    for option, treatment, policy, b, e in tqdm(jobs, desc="treatments", disable=not progress):
        changes = {"discarded": treatment, "conf_p": 0.3} if option == "discarded" else \
            {"uncounted": treatment}
        r = w.play(w.config(policy, **changes), b, e)
        rows.append({"option": option, "treatment": treatment, "policy": policy,
                     "budget_fraction": b, "energy_fraction": e, **r})
    return rows


def energy_breakdown(w: Workload, budget: float = 0.1) -> list[dict]:
    rows = []
    for policy in POLICY_ORDER:
        cfg = w.config(policy)
        parts = {"capture": 0.0, "compute": 0.0, "aggregate": 0.0, "downlink": 0.0}
        for sim in w.sims:
            r = sim.run(cfg, budget if cfg.policy != "onboard-only" else 0.0, 1.0)
            for k in parts:
                parts[k] += r.plan.ledger.spent[k]
        n = len(w.sims)
        rows.append({"policy": policy, **{f"{k}_j_per_scene": v / n for k, v in parts.items()}})
    return rows


def dedup_rows(name: str, sequences, truths, onboard, ground, run, progress=True,
               classes: list[str] | None = None) -> dict:
    """Collaborative pipeline with dedup on vs off over sequences of captures (a revisit
    cache per run, captures in time order)."""
    out = {}
    for dedup_on in (True, False):
        cfg = replace(run.cfg, dedup=dedup_on)
        totals, tv, inferences, tiles = [], [], 0, 0
        cache = RevisitCache()
        for seq, seq_truth in tqdm(list(zip(sequences, truths, strict=True)),
                                   desc=f"{name} dedup={'on' if dedup_on else 'off'}",
                                   disable=not progress):
            for img, t in zip(seq, seq_truth, strict=True):
                sim = SceneSimulator(img, onboard, ground, run.energy, run.tiling,
                                     run.error_model, classes=classes)
                r = sim.run(cfg, run.budget_fraction, run.energy_fraction, cache)
                totals.append(r.total)
                tv.append(t)
                inferences += r.plan.inferences
                tiles += len(r.plan.grid)
        tv = np.array(tv, float)
        err = np.abs(np.array(totals) - tv)
        out[dedup_on] = {"relative_cmae": float(err.mean() / tv.mean()),
                         "cmae": float(err.mean()), "inferences": inferences, "tiles": tiles,
                         "captures": len(tv)}
    on, off = out[True], out[False]
    return {"workload": name, "captures": on["captures"], "tiles": on["tiles"],
            "inferences_dedup": on["inferences"], "inferences_no_dedup": off["inferences"],
            "skipped_fraction": 1 - on["inferences"] / max(off["inferences"], 1),
            "relative_cmae_dedup": on["relative_cmae"],
            "relative_cmae_no_dedup": off["relative_cmae"],
            "relative_cmae_change": on["relative_cmae"] - off["relative_cmae"]}

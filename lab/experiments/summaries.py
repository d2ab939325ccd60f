"""The figures an experiment run reports, read off its sweeps' rows (``summary.json``).

Every ratio is taken against the strongest member of a baseline family at the same point
(``shared.pipeline.baselines.FAMILIES``): the fairest comparison, not the paper's weakest.
"""

from __future__ import annotations

import math

from shared.pipeline.baselines import BASELINES, FAMILIES
from shared.pipeline.throttling import PAPER_POLICIES

REPORTED_BUDGETS = (0.01, 0.02, 0.05, 0.1, 0.25)
ENERGIES = (1.0, 0.5)
# The targets: at 10 % and energy 1.0 at most 0.7x the strongest onboard-only; at
# energy 0.5 at least 3x better than it; at least 10x the strongest bent pipe's efficiency.
TARGETS = {"ample_ratio_max": 0.7, "scarce_ratio_min": 3.0, "efficiency_min": 10.0}


def _get(rows: list[dict], policy: str, b: float, e: float) -> dict:
    return next(r for r in rows if r["policy"] == policy and
                math.isclose(r["budget_fraction"], b) and r["energy_fraction"] == e)


def _strongest(rows: list[dict], family: str, b: float, e: float) -> dict:
    return min((_get(rows, p, b, e) for p in FAMILIES[family]), key=lambda r: r["cmae"])


def budget_summary(rows: list[dict], policy: str) -> dict:
    """The reported points (collaborative and every baseline), the strongest member of each
    family there, and the targets' ratios against those strongest members."""
    budgets = sorted({r["budget_fraction"] for r in rows})
    out: dict = {"policy": policy, "ground_only_cmae": rows[0]["ground_only_cmae"],
                 "ground_only_corrected_cmae": rows[0]["ground_only_corrected_cmae"],
                 "points": []}
    for e in ENERGIES:
        for b in REPORTED_BUDGETS:
            if not any(math.isclose(b, x) for x in budgets):
                continue
            c = _get(rows, policy, b, e)
            out["points"].append({
                "energy_fraction": e, "budget_fraction": b, "collaborative": c["cmae"],
                "collaborative_relative": c["relative_cmae"],
                "baselines": {name: _get(rows, name, b, e)["cmae"] for name in BASELINES},
                "strongest": {fam: _strongest(rows, fam, b, e)["policy"] for fam in FAMILIES},
                "efficiency": c["efficiency"],
                "efficiency_is_lower_bound": c["efficiency_is_lower_bound"]})
    if any(math.isclose(0.1, x) for x in budgets):
        ample_oo = _strongest(rows, "onboard-only", 0.1, 1.0)
        scarce_oo = _strongest(rows, "onboard-only", 0.1, 0.5)
        ample, scarce = _get(rows, policy, 0.1, 1.0), _get(rows, policy, 0.1, 0.5)
        out["targets"] = {
            "ample_ratio": ample["cmae"] / max(ample_oo["cmae"], 1e-9),
            "ample_against": ample_oo["policy"],
            "scarce_ratio": scarce_oo["cmae"] / max(scarce["cmae"], 1e-9),
            "scarce_against": scarce_oo["policy"], **TARGETS}
    eff = [r for r in rows if r["policy"] == policy and r["energy_fraction"] == 1.0
           and r["budget_fraction"] < 1.0 and math.isfinite(r["efficiency"])]
    if eff:
        top = max(eff, key=lambda r: r["efficiency"])
        out["max_efficiency"] = {"efficiency": top["efficiency"],
                                 "budget_fraction": top["budget_fraction"],
                                 "lower_bound": top["efficiency_is_lower_bound"]}
    out["value_vs_best_paper"] = {
        str(b): [_get(rows, policy, b, 1.0)["cmae"],
                 min(_get(rows, p, b, 1.0)["cmae"] for p in PAPER_POLICIES)] for b in budgets}
    return out


def treatment_summary(rows: list[dict]) -> dict:
    """Mean CMAE of each treatment over its runs (the same runs for both treatments)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["option"], {}).setdefault(r["treatment"], []).append(r["cmae"])
    return {o: {t: float(sum(v) / len(v)) for t, v in d.items()} for o, d in out.items()}


def compute_cost_summary(rows: list[dict], policy: str) -> list[dict]:
    """Per compute cost and energy: the collaborative CMAE and the strongest onboard-only and
    vanilla, with the two ratios the targets use."""
    out = []
    for label in dict.fromkeys(r["compute_cost"] for r in rows):
        for e in dict.fromkeys(r["energy_fraction"] for r in rows):
            sel = [r for r in rows if r["compute_cost"] == label and r["energy_fraction"] == e]
            by = {r["policy"]: r["cmae"] for r in sel}
            oo = min(FAMILIES["onboard-only"], key=lambda p: by[p])
            va = min(FAMILIES["vanilla"], key=lambda p: by[p])
            out.append({"compute_cost": label, "j_per_flop": sel[0]["j_per_flop"],
                        "energy_fraction": e, "budget_fraction": sel[0]["budget_fraction"],
                        "collaborative": by[policy], "onboard_only": by[oo],
                        "onboard_only_variant": oo, "vanilla": by[va], "vanilla_variant": va,
                        "collaborative_over_onboard_only": by[policy] / max(by[oo], 1e-9),
                        "collaborative_over_vanilla": by[policy] / max(by[va], 1e-9)})
    return out

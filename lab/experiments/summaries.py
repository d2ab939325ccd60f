"""The figures an experiment run reports, read off its sweeps' rows (``summary.json``).
"""

from __future__ import annotations

import math

from shared.pipeline.throttling import PAPER_POLICIES


def budget_summary(rows: list[dict], w) -> dict:
    """The issue's target figures, read off the budget sweep."""
    def get(policy, b, e):
        return next(r for r in rows if r["policy"] == policy and
                    math.isclose(r["budget_fraction"], b) and r["energy_fraction"] == e)

    best = w.run.cfg.policy
    go = rows[0]["ground_only_cmae"]
    oo = get("onboard-only", 0.1, 1.0)["cmae"]
    out = {"ground_only_cmae": go, "onboard_only_cmae": oo, "policy": best}
    for b in (0.1, 0.25):
        c = get(best, b, 1.0)["cmae"]
        out[f"gap_closed_at_{b}"] = (oo - c) / (oo - go) if oo != go else float("nan")
        out[f"cmae_at_{b}"] = c
    scarce_oo = get("onboard-only", 0.1, 0.5)["cmae"]
    scarce = get(best, 0.1, 0.5)["cmae"]
    out.update({"scarce_onboard_only_cmae": scarce_oo, "scarce_collaborative_cmae": scarce,
                "scarce_ratio": scarce_oo / max(scarce, 1e-9)})
    budgets = sorted({r["budget_fraction"] for r in rows})
    out["value_vs_best_paper"] = {
        str(b): [get(best, b, 1.0)["cmae"],
                 min(get(p, b, 1.0)["cmae"] for p in PAPER_POLICIES)] for b in budgets}
    eff = [r for r in rows if r["policy"] == best and r["energy_fraction"] == 1.0]
    top = max(eff, key=lambda r: r["efficiency"])
    out["max_efficiency"] = {"efficiency": top["efficiency"],
                             "budget_fraction": top["budget_fraction"],
                             "lower_bound": top["efficiency_is_lower_bound"]}
    return out


def treatment_summary(rows: list[dict]) -> dict:
    """Mean CMAE of each treatment over its runs (the same runs for both treatments)."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["option"], {}).setdefault(r["treatment"], []).append(r["cmae"])
    return {o: {t: float(sum(v) / len(v)) for t, v in d.items()} for o, d in out.items()}

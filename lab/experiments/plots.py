"""The experiments' plots (matplotlib, Agg): the tile-size sweep (the paper's Fig. 4), error
against budget (Fig. 6), the conf_p sweep, energy, and deduplication.
"""

from __future__ import annotations

from pathlib import Path

from lab.experiments import sweeps as ex
from shared.pipeline.throttling import PAPER_POLICIES


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_tiles(rows, entry, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    s = [r["tile_size"] for r in rows]
    ax.plot(s, [r["relative_cmae"] for r in rows], "o-", ms=3,
            label="relative CMAE, mean of both counters")
    if "onboard_relative_cmae" in rows[0]:
        ax.plot(s, [r["onboard_relative_cmae"] for r in rows], ".:", ms=3,
                label="relative CMAE, onboard counter")
    ax.plot(s, [r["objective"] for r in rows], "s-", ms=3, label="objective J(s)")
    ax.axvline(entry.tile_size, color="k", ls="--", label=f"stored: {entry.tile_size}px")
    ax.set_xlabel("tile size (source px)")
    ax.set_ylabel("relative CMAE / objective")
    ax2 = ax.twinx()
    ax2.plot(s, [r["seconds_per_scene"] for r in rows], "^:", color="tab:red", ms=3)
    ax2.set_ylabel("onboard seconds per scene (1 thread)", color="tab:red")
    ax.legend(loc="upper center", fontsize=8)
    ax.set_title("Accuracy and time vs tile size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_budget(rows, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, e in zip(axes, (1.0, 0.5), strict=True):
        for policy in ex.POLICY_ORDER:
            pts = [r for r in rows if r["policy"] == policy and r["energy_fraction"] == e]
            ax.plot([r["budget_fraction"] for r in pts], [r["cmae"] for r in pts], "o-",
                    ms=3, label=policy)
        ax.axhline(rows[0]["ground_only_cmae"], color="k", ls="--", label="ground-only")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("downlink budget (fraction of raw tile bytes)")
        ax.set_title(f"energy fraction {e}")
    axes[0].set_ylabel("CMAE (objects per scene)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_conf(rows, path: Path) -> None:
    plt = _plt()
    budgets = sorted({r["budget_fraction"] for r in rows})
    fig, axes = plt.subplots(1, len(budgets), figsize=(4 * len(budgets), 4), sharey=True)
    for ax, b in zip(axes, budgets, strict=True):
        for policy in PAPER_POLICIES:
            pts = [r for r in rows if r["policy"] == policy and r["budget_fraction"] == b]
            ax.plot([r["conf_p"] for r in pts], [r["cmae"] for r in pts], "o-", label=policy)
        ax.set_title(f"budget {b:.0%}")
        ax.set_xlabel("conf_p")
    axes[0].set_ylabel("CMAE")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_energy(rows, parts, path: Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for policy in sorted({r["policy"] for r in rows}):
        pts = [r for r in rows if r["policy"] == policy]
        a.plot([r["energy_fraction"] for r in pts], [r["cmae"] for r in pts], "o-",
               label=policy)
    a.set_xlabel("energy budget (fraction of counting every tile onboard)")
    a.set_ylabel("CMAE")
    a.legend(fontsize=8)
    bottom = [0.0] * len(parts)
    for k in ("capture", "compute", "aggregate", "downlink"):
        vals = [p[f"{k}_j_per_scene"] for p in parts]
        b.bar([p["policy"] for p in parts], vals, bottom=bottom, label=k)
        bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    b.set_ylabel("joules per scene")
    b.tick_params(axis="x", rotation=30)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dedup(rows, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ax.scatter(100 * r["skipped_fraction"], 100 * r["relative_cmae_change"], s=60)
        ax.annotate(r["workload"], (100 * r["skipped_fraction"],
                                    100 * r["relative_cmae_change"]), fontsize=8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("onboard inferences skipped (%)")
    ax.set_ylabel("change in relative CMAE (points)")
    ax.set_title("Deduplication: savings vs error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

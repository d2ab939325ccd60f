"""``targetfuse soup``: a counter between its start and a fine-tuned continuation of it,
chosen on validation (weight-space interpolation, WiSE-FT: Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022; uniform model soups, ICML 2022).

Every continuation of the shipped ground traded sources against each other: JPEG crops or
enlarged vehicles gained VEDAI, GDIT and NWPU aircraft and lost Airbus aircraft and NWPU
ships (models/README.md). Networks fine-tuned from one start stay in one basin of the loss,
and the points on the segment between start and end often keep most of what each end
knows, which one end alone does not.

Algorithm:

1. ``theta_0``: the start's weights (a shipped ``deep.pt``, a warm start, a run's
   ``best.pt``); ``theta_1 .. theta_k``: continuations of it (runs' ``best.pt`` or
   ``last.pt``, their averaged (EMA) weights), the same architecture; their mean
   ``theta_end`` (a uniform soup when k > 1).
2. For each ``alpha`` of the grid, ``theta(alpha) = (1 - alpha) theta_0 + alpha theta_end``
   over every floating tensor (BatchNorm's running statistics too); integer tensors (the
   batch counters) come from ``theta_1``.
3. Each ``theta(alpha)`` is scored with the training's validation metric
   (``lab.training.loop.validate``: mean relative CMAE over (source, class) groups holding
   >= 10 objects) on the validation scenes of the first continuation's run, tiles as JPEG
   at its ``--val-jpeg`` when it had one; the lowest is chosen. No test split is read.
4. ``--out``: a run folder ``targetfuse ship --run`` takes: ``best.pt`` (the chosen weights),
   ``run.json`` (the continuation's record, with the soup's ends and every alpha's scores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from lab.data.realdev import add_real_dev_option

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def interpolate(start: dict, ends: list[dict], alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) start + alpha mean(ends)`` over floating tensors (step 2)."""
    if not ends:
        raise ValueError("a soup needs at least one continuation")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha is a share in [0, 1], got {alpha}")
    for end in ends:
        if end.keys() != start.keys() or any(end[k].shape != start[k].shape for k in start):
            raise ValueError("the continuations do not have the start's architecture")
    out = {}
    for k, v in start.items():
        if not v.is_floating_point():
            out[k] = ends[0][k].clone()
            continue
        end = torch.stack([e[k] for e in ends]).mean(dim=0)
        out[k] = (1.0 - alpha) * v + alpha * end
    return out


def _alphas(text: str) -> list[float]:
    try:
        values = sorted({float(a) for a in text.split(",") if a.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 0,0.5,1") from None
    if not values or any(not 0.0 <= a <= 1.0 for a in values):
        raise argparse.ArgumentTypeError(f"{text!r}: alphas are shares in [0, 1]")
    return values


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("soup", help="interpolate a counter's weights toward fine-tuned "
                       "continuations of it and keep the blend validation prefers")
    p.add_argument("--start", required=True,
                   help="the start's weights (models/NAME/deep.pt, a warm start, a best.pt)")
    p.add_argument("--to", required=True, nargs="+",
                   help="continuations' checkpoints (RUN/best.pt or RUN/last.pt); the first "
                        "one's run.json gives the architecture and the validation scenes")
    p.add_argument("--alphas", type=_alphas, default=list(DEFAULT_ALPHAS),
                   help="weights of the continuations, e.g. 0,0.25,0.5,0.75,1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="run folder for the chosen blend (for ship)")
    p.add_argument("--splits-dir", default=None,
                   help="folder of the sources' split files (default models/splits)")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ground.nets.layers import channels_last
    from lab.data.classes import load_class_map
    from lab.data.label_cleaning import DEFAULT_IOU
    from lab.models.nets import build
    from lab.training.loop import averaged_weights, validate
    from lab.training.sources import SPLITS_DIR, multi_source
    from shared.model_card import sha256_of

    ends_paths = [Path(p) for p in args.to]
    record = json.loads((ends_paths[0].parent / "run.json").read_text())
    if not record.get("sources"):
        raise ValueError(f"{ends_paths[0].parent}: not a multi-source run (train --sources)")
    cfg = record["config"]
    start = averaged_weights(args.start)
    ends = [averaged_weights(p) for p in ends_paths]
    torch.set_num_threads(args.threads)
    class_map = load_class_map()
    splits = Path(args.splits_dir or SPLITS_DIR)
    val = multi_source(record["sources"], "val", cfg["model_gsd"], class_map, args.real_dev,
                       record.get("dedupe_iou", DEFAULT_IOU), splits_dir=splits,
                       detail_gsd=cfg.get("detail_gsd"))
    scale = cfg.get("class_scale")
    channel_scale = None if not scale else np.array(
        [float(scale.get(c, 1.0)) for c in record["classes"]])
    model = channels_last(build(cfg["arch"], cfg["arch_config"]))  # as the run validated
    scores, best = [], None
    for alpha in args.alphas:
        model.load_state_dict(interpolate(start, ends, alpha))
        metrics = validate(model, val.scenes, cfg["input_size"], list(record["classes"]),
                           channel_scale, cfg.get("val_jpeg"))
        scores.append({"alpha": alpha, **metrics})
        groups = ", ".join(f"{k} {v['relative_cmae']:.3f}" for k, v in metrics["groups"].items()
                           if v["objects"] >= 10)
        print(f"alpha {alpha:.2f}: validation {metrics['relative_cmae']:.4f} "
              f"(pooled {metrics['pooled_relative_cmae']:.3f}); {groups}", flush=True)
        if best is None or metrics["relative_cmae"] < best[1]["relative_cmae"]:
            best = (alpha, metrics)
    alpha, metrics = best
    jpeg = f" (tiles as JPEG q{cfg['val_jpeg']})" if cfg.get("val_jpeg") else ""
    print(f"chosen alpha {alpha:.2f}: validation {metrics['relative_cmae']:.4f}{jpeg}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"ema": interpolate(start, ends, alpha), "epoch": None, "val": metrics},
                   out / "best.pt")
        # The start by content too: shipping the blend overwrites a shipped start's path.
        record["soup"] = {"start": str(args.start), "start_sha256": sha256_of(Path(args.start)),
                          "ends": [str(p) for p in ends_paths], "alpha": alpha,
                          "scores": scores}
        (out / "run.json").write_text(json.dumps(record, indent=1))
        print(f"wrote {out} (ship it with: targetfuse ship --run {out})")
    return 0

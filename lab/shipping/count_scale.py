"""``targetfuse fit-count-scale``: a per-class count scale for each counter, fit on validation.

A density counter trained briefly with an MSE loss tends to undercount: the density it puts
down is a steady share short of the objects. A per-class scale ``s_c`` on the density map
corrects that share without retraining. It is fit on validation scenes (from a
``targetfuse eval-sources --part val`` result, which records each image's totals), and with
``--train`` on the training scenes too (``--part train``: validation alone holds under 30
objects of some classes, and the counter's whole-scene undercount shows on the scenes it
was trained on as well), never on a test split, to minimise the selection metric
training uses: the mean over (source, class) groups with at least ``min_objects`` objects
of the relative CMAE, ``mean_i |s p_i - t_i| / mean_i t_i``, searched on a log grid. A class
with no such group keeps scale 1. The scale goes into each
counter's card (``extra.count_scale``), where ``TileCounter.scaled`` applies it to every
density map. The onboard confidence reads the density, so it is refit on the scaled counts
afterwards (``--refit-confidence``, on the training and validation splits as when shipping).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lab.data.realdev import add_real_dev_option
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card, write_card

GRID = np.exp(np.linspace(np.log(0.5), np.log(4.0), 401))
MIN_OBJECTS = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-count-scale",
                       help="fit each counter's per-class count scale on validation results")
    p.add_argument("--model", default="objects", help="shipped pair (models/NAME/)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--val", required=True,
                   help="an eval-sources --part val result of the pair, without a count scale")
    p.add_argument("--train", default=None,
                   help="also fit on this eval-sources --part train result of the pair (each "
                        "source's training scenes a group of their own)")
    p.add_argument("--min-objects", type=int, default=MIN_OBJECTS)
    p.add_argument("--json", default=None, help="also write the fits here")
    p.add_argument("--dry-run", action="store_true",
                   help="fit and report (and --json) without writing the cards")
    p.add_argument("--refit-confidence", action="store_true",
                   help="refit the onboard confidence on the scaled counts")
    p.add_argument("--splits-dir", default=None, help="with --refit-confidence: the splits "
                   "folder (default models/splits)")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def group_totals(result: dict, role: str, part: str = "val"
                 ) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """class -> [(predicted, truth) per-image totals of one source], from an eval result of
    ``part`` ("val" or "train"; a test result is refused: the scale is chosen, never fit on
    what it reports)."""
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for src in result["sources"]:
        if src.get("part") != part:
            raise ValueError(f"{src['source']}: expected a {part} result, not "
                             f"{src.get('part')!r}")
        by_class: dict[str, tuple[list[float], list[float]]] = {}
        for img in src.get("per_image", []):
            for c, truth in img["truth"].items():
                if c in img.get(role, {}):
                    by_class.setdefault(c, ([], []))[0].append(img[role][c])
                    by_class[c][1].append(truth)
        for c, (pred, truth) in by_class.items():
            out.setdefault(c, []).append((np.array(pred, float), np.array(truth, float)))
    return out


def relative_cmae(scale: float, groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean([np.mean(np.abs(scale * p - t)) / np.mean(t) for p, t in groups]))


def fit_scale(groups: list[tuple[np.ndarray, np.ndarray]], min_objects: int = MIN_OBJECTS
              ) -> tuple[float, float | None, float | None]:
    """(scale, mean relative CMAE before, after) over the groups with enough objects."""
    kept = [(p, t) for p, t in groups if t.sum() >= min_objects]
    if not kept:
        return 1.0, None, None
    errors = [relative_cmae(s, kept) for s in GRID]
    best = float(GRID[int(np.argmin(errors))])
    return best, relative_cmae(1.0, kept), min(errors)


def fit_role(result: dict, role: str, min_objects: int = MIN_OBJECTS,
             train: dict | None = None) -> dict[str, dict]:
    """Per class: the scale over the validation groups (and the training groups of
    ``train``, each source's training scenes one more group)."""
    by_class = group_totals(result, role)
    if train is not None:
        for c, groups in group_totals(train, role, "train").items():
            by_class.setdefault(c, []).extend(groups)
    fits = {}
    for c, groups in sorted(by_class.items()):
        scale, before, after = fit_scale(groups, min_objects)
        fits[c] = {"scale": round(scale, 4), "groups": int(sum(t.sum() >= min_objects
                                                               for _, t in groups)),
                   "fit_relative_cmae_before": None if before is None else round(before, 4),
                   "fit_relative_cmae_after": None if after is None else round(after, 4)}
    return fits


def run(args: argparse.Namespace) -> int:
    result = json.loads(Path(args.val).read_text())
    train = json.loads(Path(args.train).read_text()) if args.train else None
    models_dir = Path(args.models_dir)
    fitted = {}
    for role in ("onboard", "ground"):
        card_file = card_path(args.model, role, models_dir)
        card = load_card(card_file)
        if card.extra.get("count_scale"):
            raise ValueError(f"{card_file} already has a count scale: fit on a result of the "
                             "counters without one (remove it and rerun eval-sources)")
        fits = fitted[role] = fit_role(result, role, args.min_objects, train)
        for c, f in fits.items():
            print(f"{role:8s} {c:9s} scale {f['scale']:.3f}  relative CMAE "
                  f"{f['fit_relative_cmae_before']} -> {f['fit_relative_cmae_after']} "
                  f"({f['groups']} groups)")
        if args.dry_run:
            continue
        card.extra["count_scale"] = {c: fits[c]["scale"] if c in fits else 1.0
                                     for c in card.classes}
        card.metrics["count_scale_val"] = {"from": args.val, "train": args.train,
                                           "min_objects": args.min_objects, "classes": fits}
        write_card(card, card_file)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "from": args.val,
                                               "train": args.train,
                                               "part": "val+train" if train else "val",
                                               "applied": not args.dry_run,
                                               "fits": fitted}, indent=1) + "\n")
    if args.refit_confidence and not args.dry_run:
        from lab.shipping.ship import refit_confidence

        refit_confidence(card_path(args.model, "onboard", models_dir),
                         Path(args.splits_dir) if args.splits_dir else None, args.real_dev)
    return 0

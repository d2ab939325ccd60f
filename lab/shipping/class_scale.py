"""``targetfuse fit-class-scales``: the input scale each class is counted at, chosen on validation.

For a ground counter that counts tiles enlarged (``ModelCard.detail_gsd_m``), each class is
counted on the validation scenes of the sources it was trained on, at each candidate input
scale (1: enlarged, as trained; 0.5: the tiles' own pixels), by the training's validation
(whole scenes tile by tile, ``lab.training.loop.validate``). Per class, the scale with the
lowest mean over (source, class) groups with at least ``VAL_MIN_OBJECTS`` objects of the
relative CMAE is kept; classes kept at a scale other than 1 go into the card's
``extra.class_input_scale``, which the ground counter applies (``ground.class_scales``).
Every measured figure goes into the card's metrics (``class_input_scale_val``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from lab.data.realdev import add_real_dev_option
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card, write_card

CANDIDATES = (1.0, 0.5)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-class-scales",
                       help="choose on validation the input scale the ground counts each "
                            "class at")
    p.add_argument("--model", default="objects", help="shipped pair (models/NAME/)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the measurements here")
    p.add_argument("--dry-run", action="store_true", help="measure without writing the card")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def choose(groups_by_scale: dict[float, dict[str, dict]], min_objects: int
           ) -> dict[str, dict]:
    """Per class: each scale's mean relative CMAE over its groups with enough objects (from
    ``validate``'s ``groups``: "source/class" -> relative CMAE, objects) and the best
    scale (ties and classes without such a group: 1)."""
    out: dict[str, dict] = {}
    for s, groups in groups_by_scale.items():
        for key, g in groups.items():
            c = key.rsplit("/", 1)[1]
            if g["objects"] >= min_objects:
                out.setdefault(c, {"by_scale": {}})["by_scale"].setdefault(
                    f"{s:g}", []).append(g["relative_cmae"])
    for rec in out.values():
        rec["groups"] = max(len(v) for v in rec["by_scale"].values())
        means = {s: round(float(np.mean(v)), 4) for s, v in rec["by_scale"].items()}
        rec["by_scale"] = means
        best = min(means, key=lambda s: (means[s], s != "1"))
        rec["scale"] = float(best)
    return out


def run(args: argparse.Namespace) -> int:
    from ground.counter import load_network
    from lab.data.classes import load_class_map
    from lab.training.loop import VAL_MIN_OBJECTS, validate
    from lab.training.sources import multi_source

    torch.set_num_threads(args.threads)
    card_file = card_path(args.model, "ground", Path(args.models_dir))
    card = load_card(card_file)
    if not card.detail_gsd_m:
        raise ValueError(f"{card_file}: not a counter of enlarged tiles (no detail_gsd_m): "
                         "every class is counted at its input scale")
    model = load_network(card, card_file.parent / card.weights)
    scenes = multi_source(card.data["sources"], "val", card.model_gsd_m, load_class_map(),
                          args.real_dev, card.data["dedupe_iou"],
                          detail_gsd=card.detail_gsd_m).scenes
    measured = {}
    for s in CANDIDATES:
        at = [dataclasses.replace(sc, enlarge=sc.enlarge * s) for sc in scenes]
        m = validate(model, at, round(card.input_size * s), list(card.classes))
        measured[s] = m["groups"]
        print(f"input scale {s:g}: mean relative CMAE {m['relative_cmae']:.4f}")
    chosen = choose(measured, VAL_MIN_OBJECTS)
    for c, rec in chosen.items():
        print(f"{c:9s} {rec['by_scale']} -> {rec['scale']:g}")
    result = {"model": args.model, "part": "val", "min_objects": VAL_MIN_OBJECTS,
              "classes": chosen,
              "groups": {f"{s:g}": g for s, g in measured.items()}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if not args.dry_run:
        from lab.shipping.ship import flops_per_tile

        card.extra["class_input_scale"] = {c: r["scale"] for c, r in chosen.items()
                                           if r["scale"] != 1.0}
        card.metrics["class_input_scale_val"] = result
        # A tile now costs one pass per scale in use.
        card.flops_per_tile = flops_per_tile(model, card.input_size, list(card.classes),
                                             card.extra["class_input_scale"])
        write_card(card, card_file)
    return 0

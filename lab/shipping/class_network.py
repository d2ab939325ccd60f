"""``targetfuse add-class-network``: a second ground network for some classes, if it helps.

The shipped ground card's network (the main one) and a training run's best checkpoint (the
member) are combined as the ground counts with them (``ground.class_network.CountingNet``:
the member counts ``--classes`` from a pass over the tiles resampled by ``--input-scale``,
the main network every other class). Both the main network alone and the combination are
scored by the training's validation (whole validation scenes of the card's sources, tile by
tile at the card's GSD and input size: ``lab.training.loop.validate``); the member is added
to the card (its weights in float16 beside it, ``extra.class_network`` with its sha256 and
``extra.class_network_spec``; the card's FLOPs per tile gain the member's pass) only when the
combination's mean relative CMAE is lower, unless ``--dry-run``. Every figure goes into the
card's metrics (``class_network_val``) and ``--json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lab.data.realdev import add_real_dev_option
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card, sha256_of, write_card
from shared.paths import project_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("add-class-network",
                       help="add a second ground network for some classes when validation "
                            "says it helps")
    p.add_argument("--run", required=True, help="training run folder of the member network")
    p.add_argument("--classes", required=True, help="classes it counts, comma-separated")
    p.add_argument("--input-scale", type=float, default=1.0,
                   help="the tiles resampled by this before the member counts them (2: "
                        "enlarged, for a network trained on enlarged tiles)")
    p.add_argument("--model", default="objects", help="shipped pair (models/NAME/)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--splits-dir", default=None,
                   help="folder of the sources' split files (default: the card's)")
    p.add_argument("--json", default=None, help="also write the measurements here")
    p.add_argument("--dry-run", action="store_true", help="measure without writing the card")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def splits_dir(card) -> Path:
    """The folder of the split files the card's network was trained on (its validation
    scenes are those files' ``val``)."""
    from lab.training.sources import SPLITS_DIR

    files = list((card.data.get("split_files") or {}).values())
    return project_path(files[0]).parent if files else SPLITS_DIR


def run(args: argparse.Namespace) -> int:
    from ground.class_network import ClassNetworkSpec, CountingNet
    from ground.counter import load_network
    from lab.data.classes import load_class_map
    from lab.models.nets import count_flops
    from lab.shipping.ship import _load_run, flops_per_tile
    from lab.training.loop import validate
    from lab.training.sources import multi_source

    torch.set_num_threads(args.threads)
    card_file = card_path(args.model, "ground", Path(args.models_dir))
    card = load_card(card_file)
    if card.extra.get("class_network"):
        raise ValueError(f"{card_file} already has a class network "
                         f"({card.extra['class_network']})")
    record, member, _ = _load_run(Path(args.run))
    cfg = record["config"]
    spec = ClassNetworkSpec.of({"architecture": cfg["arch"], "arch_config": cfg["arch_config"],
                                "classes": args.classes.split(","),
                                "input_scale": args.input_scale}, list(card.classes))
    if list(record.get("classes") or []) != list(card.classes):
        raise ValueError(f"{args.run}: counts {record.get('classes')}, not the card's "
                         f"classes {card.classes}")
    main = load_network(card, card_file.parent / card.weights)
    splits = Path(args.splits_dir) if args.splits_dir else splits_dir(card)
    scenes = multi_source(card.data["sources"], "val", card.model_gsd_m, load_class_map(),
                          args.real_dev, card.data["dedupe_iou"], splits_dir=splits,
                          detail_gsd=card.detail_gsd_m).scenes
    scale = card.extra.get("class_input_scale")
    classes = list(card.classes)
    alone = validate(CountingNet(main, classes, scale), scenes, card.input_size, classes)
    both = validate(CountingNet(main, classes, scale, member, spec), scenes, card.input_size,
                    classes)
    print(f"main network alone: mean relative CMAE {alone['relative_cmae']:.4f}; with "
          f"{args.run} for {', '.join(spec.classes)} at x{spec.input_scale:g}: "
          f"{both['relative_cmae']:.4f}")
    for key in both["groups"]:
        if both["groups"][key]["relative_cmae"] is None:  # no object: false counts only
            print(f"  {key:40s} false counts a scene "
                  f"{alone['groups'][key]['false_per_scene']:.3f} -> "
                  f"{both['groups'][key]['false_per_scene']:.3f}")
            continue
        print(f"  {key:40s} {alone['groups'][key]['relative_cmae']:.3f} -> "
              f"{both['groups'][key]['relative_cmae']:.3f} "
              f"({both['groups'][key]['objects']} objects)")
    helps = both["relative_cmae"] < alone["relative_cmae"]
    result = {"part": "val", "run": str(args.run), "spec": spec.__dict__,
              "alone": alone, "with_class_network": both, "kept": helps}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.dry_run or not helps:
        print("card unchanged" + ("" if helps else ": the member does not help on validation"))
        return 0
    name = f"deep-{'-'.join(spec.classes)}.pt"
    out = card_file.parent / name
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in member.state_dict().items()}, out)
    card.extra.update({"class_network": name, "class_network_sha256": sha256_of(out),
                       "class_network_spec": spec.__dict__})
    card.metrics["class_network_val"] = result
    # A tile now costs the main network's passes over its own classes and the member's.
    own = [c for c in classes if c not in spec.classes]
    card.flops_per_tile = flops_per_tile(main, card.input_size, own, scale) + count_flops(
        member, round(card.input_size * spec.input_scale))
    write_card(card, card_file)
    print(f"added {out} ({out.stat().st_size} bytes) to {card_file}")
    return 0

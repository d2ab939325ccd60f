"""``targetfuse eval-sources``: a multi-class counter pair on each real-dev source's split.

Per source and class, over the images whose labels cover the class (the class map's record,
``lab.data.classes``; imagery a source excludes is left out): relative CMAE onboard and ground,
CMAE, per-tile MAE against per-tile truth by object centre, and the object count. Per source:
the Jaccard index of each mask head and the onboard confidence's AUROC (all tiles and
non-empty tiles) and ECE. Each image is counted as a user would ask for it: the request
names the classes its labels cover, so the count, mask and confidence are of those classes
(an airport image is asked for aircraft, not for its unboxed cars).

``--drop-gsd`` withholds every image's GSD (as a user who forgot ``--gsd``): the counters then
cut tiles as if the scene were at their own GSD; comparing the two runs measures what an
unknown GSD costs on the sources that state one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

from lab.data.classes import load_class_map
from lab.data.label_cleaning import DEFAULT_IOU
from lab.data.realdev import REAL_DEV, add_real_dev_option, load_real
from lab.evaluation.evaluate import _jaccard_counts, truth_objects
from lab.training.sources import SPLITS_DIR, parse_sources, split_ids
from shared.confidence import auroc, expected_calibration_error, is_right
from shared.counting import run_tiles
from shared.model_bundle import MODELS_DIR
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.preprocess import limit_detail
from shared.tile_grid import true_counts

ROLES = ("onboard", "ground")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-sources",
                       help="score a multi-class pair per real-dev source and class")
    p.add_argument("--model", default="objects", help="shipped pair (models/NAME/)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--sources", required=True, help="real-dev sources, comma-separated")
    p.add_argument("--part", default="test", help="split part (default test)")
    p.add_argument("--drop-gsd", action="store_true",
                   help="withhold every image's GSD (what an unknown GSD costs)")
    p.add_argument("--estimate-gsd", action="store_true",
                   help="estimate an unknown (or withheld) GSD from the pixels")
    p.add_argument("--excluded", action="store_true",
                   help="score the imagery the class map leaves out (e.g. colour infrared)")
    p.add_argument("--dedupe-iou", type=float, default=DEFAULT_IOU)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tta", default=None, choices=["on", "off"])
    p.add_argument("--zoom", type=float, default=1.0,
                   help="count at this many times the counters' resolution (2: tiles of half "
                        "the pixels, upsampled, their detail limited to the counters' GSD: what "
                        "the ground can do with a downlinked tile)")
    p.add_argument("--downlink-quality", type=int, default=None,
                   help="the ground counts the onboard grid's tiles as downlinked: resized to "
                        "the onboard input, JPEG at this quality (1-100)")
    p.add_argument("--no-ground", action="store_true",
                   help="score the onboard counter alone (e.g. a leave-one-source-out run "
                        "whose ground counter is not trained)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--splits-dir", default=str(SPLITS_DIR))
    add_real_dev_option(p)
    p.set_defaults(func=run)


def _ratio(err: list[float], truth: list[float]) -> float | None:
    if not truth or float(np.mean(truth)) == 0:
        return None
    return round(float(np.mean(err)) / float(np.mean(truth)), 4)


def evaluate_source(source: str, part: str, onboard, ground, class_map=None,
                    root: str | Path | None = None, dedupe_iou: float = DEFAULT_IOU,
                    drop_gsd: bool = False, progress: bool = True,
                    splits_dir: Path = SPLITS_DIR, excluded: bool = False,
                    estimate: bool = False, *, zoom: float = 1.0,
                    downlink_quality: int | None = None) -> dict:
    """``excluded``: score the imagery the class map leaves out of training instead (every
    split), e.g. NWPU's colour-infrared crops: imagery unlike anything trained on.
    ``estimate``: where an image has no GSD (or it is withheld), estimate it from the pixels
    (``onboard.scale_estimate``) and count at the estimate. ``zoom``: count at ``zoom`` x the
    counters' resolution (tiles of 1/zoom the pixels, resized up to the input), the pixels'
    detail first limited to the counters' GSD: what the ground can do with a downlinked tile,
    which is at that GSD (an image without a GSD is taken to be at the counters' own).
    ``downlink_quality``: the ground counts each tile of the onboard grid as the pipeline
    downlinks it (resized to the onboard input, a JPEG at this quality, decoded), not the
    scene's pixels: what the ground's count of a downlinked tile is worth."""
    class_map = class_map or load_class_map()
    classes = list(onboard.classes)
    ids = set(split_ids(source, splits_dir).get(part, []))
    images = [im for im in load_real(source, root).images
              if (not class_map.usable(source, im) if excluded else
                  im.image_id in ids and class_map.usable(source, im))]
    names = {c: class_map.names_of(c) for c in classes}
    acc = {c: {"truth": [], "onboard": [], "ground": [], "tiles_truth": [],
               "tiles_onboard": [], "tiles_ground": []} for c in classes}
    conf, right, tile_truth, familiar, estimates = [], [], [], [], []
    per_image: list[dict] = []  # each image's totals per class (what a count scale is fit on)
    jac = {r: [0.0, 0.0] for r in ROLES}
    seconds = {r: 0.0 for r in ROLES}
    n_tiles = 0
    for img in tqdm(images, desc=source, unit="image", disable=not progress):
        covered = [c for c in classes if c in class_map.labelled(source, img)]
        if not covered:
            continue
        pixels = img.load_pixels()
        gsd = None if drop_gsd else img.meta.gsd_m
        if gsd is None and estimate:
            from onboard.scale_estimate import estimate_gsd

            gsd = estimate_gsd(onboard, pixels)[0]
            estimates.append(gsd)
        if zoom != 1.0:
            pixels = limit_detail(pixels, gsd, onboard.card.model_gsd_m)
            gsd = (gsd or onboard.card.model_gsd_m) * zoom
        t0 = time.perf_counter()
        on = onboard.count(pixels, gsd, classes=covered)
        t1 = time.perf_counter()
        if ground is None:
            gr = on.outputs
        elif downlink_quality is not None:
            gr = downlinked_counts(ground, pixels, on.outputs.grid, onboard.input_size,
                                   downlink_quality)
        else:
            gr = ground.count(pixels, gsd, classes=covered)
        seconds["onboard"] += t1 - t0
        seconds["ground"] += time.perf_counter() - t1
        grid = on.outputs.grid
        n_tiles += len(grid)
        all_objects = []
        per_image.append({"image": img.image_id, "truth": {},
                          **{role: {} for role in ROLES[: 2 if ground is not None else 1]}})
        for c in covered:
            k = classes.index(c)
            objects, _ = truth_objects(img, names[c], dedupe_iou)
            all_objects += objects
            tiles = true_counts(grid, objects).ravel()
            a = acc[c]
            a["truth"].append(len(objects))
            a["onboard"].append(float(on.outputs.class_counts[:, k].sum()))
            a["ground"].append(float(gr.class_counts[:, k].sum()))
            a["tiles_truth"].append(tiles)
            a["tiles_onboard"].append(on.outputs.class_counts[:, k])
            a["tiles_ground"].append(gr.class_counts[:, k])
            for role in ROLES[: 2 if ground is not None else 1]:
                per_image[-1][role][c] = round(a[role][-1], 3)
            per_image[-1]["truth"][c] = len(objects)
        truth_all = true_counts(grid, all_objects).ravel()
        conf.append(on.confidence)
        if on.outputs.embedding is not None and onboard.confidence is not None and \
                onboard.confidence.ood_ref is not None:
            familiar.append(onboard.confidence.familiarity(on.outputs.embedding))
        right.append(is_right(on.outputs.counts, truth_all))
        tile_truth.append(truth_all)
        scale_out = onboard.input_size / onboard.tile_size_for(gsd) / 4
        for role, out in (("onboard", on.outputs), ("ground", gr))[: 2 if ground else 1]:
            if out.mask_logits is None:  # downlinked tiles: counts only
                continue
            i, u = _jaccard_counts(out.mask_logits, grid, all_objects, scale_out)
            jac[role][0] += i
            jac[role][1] += u
    if estimates:
        # Two significant figures: a regressed GSD is continuous (shared.scale_regressor).
        values, counts = np.unique([-1.0 if e is None else float(f"{e:.2g}")
                                    for e in estimates], return_counts=True)
        result_estimates = {("none" if v < 0 else f"{v:g}"): int(c)
                            for v, c in zip(values, counts, strict=True)}
    roles = ROLES if ground is not None else ROLES[:1]
    per_class = {}
    for c, a in acc.items():
        if not a["truth"]:
            continue
        truth = np.array(a["truth"], float)
        tt = np.concatenate(a["tiles_truth"])
        row = {"images": len(a["truth"]), "objects": int(truth.sum()),
               "mean_truth": round(float(truth.mean()), 3)}
        for role in roles:
            err = list(np.abs(np.array(a[role]) - truth))
            row[role] = {"relative_cmae": _ratio(err, list(truth)),
                         "cmae": round(float(np.mean(err)), 4),
                         "tile_mae": round(float(np.mean(np.abs(
                             np.concatenate(a[f"tiles_{role}"]) - tt))), 4),
                         "total": round(float(np.sum(a[role])), 2)}
        per_class[c] = row
    result = {"source": source, "part": "excluded imagery" if excluded else part,
              "gsd": ("dropped" if drop_gsd else "as given") +
                     (", estimated where unknown" if estimate else ""),
              "scene_gsd_m": REAL_DEV[source].gsd_m, **({"zoom": zoom} if zoom != 1.0 else {}),
              **({"ground_on": f"downlinked tiles, JPEG q{downlink_quality}"}
                 if downlink_quality is not None else {}),
              "images": len(images), "tiles": n_tiles, "classes": per_class,
              "jaccard": {r: round(jac[r][0] / jac[r][1], 4) if jac[r][1] else None
                          for r in roles},
              "ms_per_tile": {r: round(1000 * seconds[r] / max(n_tiles, 1), 2)
                              for r in roles}}
    if estimates:
        result["estimated_gsd_m"] = result_estimates
    result["per_image"] = per_image
    if conf:
        p, y, t = np.concatenate(conf), np.concatenate(right), np.concatenate(tile_truth)
        if not np.isnan(p).any():
            ne = t > 0
            result["confidence"] = {
                "auroc": _round(auroc(p, y)), "auroc_nonempty": _round(auroc(p[ne], y[ne])),
                "ece": round(expected_calibration_error(p, y), 4),
                "right_rate": round(float(y.mean()), 4), "tiles": int(len(p)),
                "nonempty_tiles": int(ne.sum()), "mean": round(float(p.mean()), 4)}
            if familiar:
                f = np.concatenate(familiar)
                result["confidence"]["familiarity"] = {
                    "mean": round(float(f.mean()), 4),
                    "beyond_training_range": round(float((f < 1).mean()), 4)}
    return result


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def run(args: argparse.Namespace) -> int:
    from ground.counter import GroundCounter
    from onboard.counter import OnboardCounter

    if args.downlink_quality is not None and not 1 <= args.downlink_quality <= 100:
        raise ValueError(f"--downlink-quality is a JPEG quality in 1-100, got "
                         f"{args.downlink_quality}")
    models_dir = Path(args.models_dir)
    onboard = OnboardCounter.shipped(args.model, models_dir, threads=args.threads)
    ground = None if args.no_ground else GroundCounter.shipped(
        args.model, models_dir, threads=args.threads,
        tta=None if args.tta is None else args.tta == "on")
    results = []
    for source in parse_sources(args.sources):
        r = evaluate_source(source, args.part, onboard, ground, root=args.real_dev,
                            dedupe_iou=args.dedupe_iou, drop_gsd=args.drop_gsd,
                            splits_dir=Path(args.splits_dir), excluded=args.excluded,
                            estimate=args.estimate_gsd, zoom=args.zoom,
                            downlink_quality=args.downlink_quality)
        results.append(r)
        for c, row in r["classes"].items():
            gr = row.get("ground", {"relative_cmae": None, "tile_mae": float("nan")})
            print(f"{source:20s} {c:9s} {row['objects']:5d} objects  relative CMAE onboard "
                  f"{_fmt(row['onboard']['relative_cmae'])} ground "
                  f"{_fmt(gr['relative_cmae'])}  tile MAE "
                  f"{row['onboard']['tile_mae']:.3f} / {gr['tile_mae']:.3f}")
        if "confidence" in r:
            c = r["confidence"]
            print(f"{source:20s} confidence AUROC {c['auroc']} (non-empty "
                  f"{c['auroc_nonempty']}) ECE {c['ece']}")
    training = onboard.card.data.get("training", {})
    out = {"model": args.model, "part": args.part,
           "gsd": ("dropped" if args.drop_gsd else "as given") +
                  (", estimated where unknown" if args.estimate_gsd else ""),
           "tta": None if ground is None else ground.tta,
           "trained_on": onboard.card.data.get("sources"),
           "schedule": f"{training.get('epochs', '?')} epochs x "
                       f"{training.get('samples_per_epoch', '?')} crops",
           "sources": results}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def downlinked_counts(ground, pixels: np.ndarray, grid, sent_input: int, quality: int
                      ) -> SimpleNamespace:
    """The ground's count per tile and class of the onboard grid's tiles as downlinked
    (``shared.pipeline.codec``: resized to the onboard input, JPEG at ``quality``), counted
    as the ground service counts them (``ground.counting``); no mask logits."""
    received = [decode_tile(encode_tile(downlink_pixels(grid.crop(pixels, i), grid.tile_size,
                                                        sent_input), quality))
                for i in range(len(grid))]
    run = run_tiles(ground.run_batch, received, ground.input_size,
                    ground.input_size / sent_input, ground.batch_size)
    return SimpleNamespace(class_counts=run.class_counts, mask_logits=None)


def covered_images(source: str, image_ids: list[str], classes: list[str], class_map=None,
                   root: str | Path | None = None, dedupe_iou: float = DEFAULT_IOU):
    """(image, the counter's classes its labels cover, their truth objects) for each usable
    image of ``image_ids`` that covers at least one of ``classes``."""
    class_map = class_map or load_class_map()
    ids = set(image_ids)
    for img in load_real(source, root).images:
        if img.image_id not in ids or not class_map.usable(source, img):
            continue
        covered = [c for c in classes if c in class_map.labelled(source, img)]
        if covered:
            yield img, covered, [o for c in covered for o in
                                 truth_objects(img, class_map.names_of(c), dedupe_iou)[0]]


def confidence_tiles(counter, parts: dict[str, list[str]], class_map=None,
                     root: str | Path | None = None, dedupe_iou: float = DEFAULT_IOU
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Confidence features, 'right' labels and the counter's pooled features (None for a
    counter without them) of every tile of the images ``parts`` names (source -> image
    ids), each image counted for the classes its labels cover."""
    from shared.confidence import tile_features

    feats, labels, embeddings = [], [], []
    for source, image_ids in parts.items():
        for img, covered, objects in covered_images(source, image_ids, counter.classes,
                                                    class_map, root, dedupe_iou):
            out = counter.count(img.load_pixels(), img.meta.gsd_m, classes=covered).outputs
            feats.append(tile_features(out.density, out.mask_logits))
            labels.append(is_right(out.counts, true_counts(out.grid, objects).ravel()))
            embeddings.append(out.embedding)
    emb = None if any(e is None for e in embeddings) else np.concatenate(embeddings)
    return np.concatenate(feats), np.concatenate(labels), emb

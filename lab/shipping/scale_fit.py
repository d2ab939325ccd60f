"""``targetfuse fit-scale-estimate``: the onboard counter's GSD regressor, fit and shipped.

For every image of the sources whose GSD is known, as delivered and downsampled to
``coarser`` GSDs drawn log-uniformly between its own and ``max_gsd`` (a scene seen coarser
is the same ground at another GSD; finer than delivered cannot be made), the onboard
counter's features of six sampled tiles at each presentation size
(``onboard.scale_estimate.presented_features``) are regressed on log10 of that GSD: ridge
regression on standardised features, its penalty chosen by cross-validation on the training
split. The fit reads the training splits only; validation and test scenes are reported per
source (the factor between estimated and true GSD: median, worst, and the median signed
factor, i.e. the bias), as delivered and over every GSD shown. The regressor goes beside the
onboard card (``scale_regressor.json``, ``extra.scale_regressor`` with its sha256), where
``onboard.scale_estimate`` uses it instead of the nearest-features choice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lab.data.realdev import REAL_DEV, add_real_dev_option, load_real
from lab.training.sources import SPLITS_DIR, parse_sources, split_ids
from shared.model_bundle import MODELS_DIR, card_path
from shared.model_card import load_card, sha256_of, write_card
from shared.scale_regressor import ScaleRegressor

KNOWN_GSD = [name for name, ds in REAL_DEV.items() if ds.gsd_m is not None]
FILE = "scale_regressor.json"
ALPHAS = np.logspace(-1, 4, 11)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-scale-estimate",
                       help="fit the onboard counter's GSD regressor on the sources whose GSD "
                            "is known")
    p.add_argument("--model", default="objects", help="shipped pair (models/NAME/)")
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--sources", default=",".join(KNOWN_GSD),
                   help="real-dev sources whose GSD is known (default: all such)")
    p.add_argument("--presentations", default="1,2,4",
                   help="tile sizes as multiples of the counter's input")
    p.add_argument("--coarser", type=int, default=2,
                   help="coarser GSDs each image is also shown at")
    p.add_argument("--max-gsd", type=float, default=2.0, help="coarsest GSD shown (m/px)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--loso", action="store_true",
                   help="also refit without each source in turn and report that source's "
                        "scenes (every part): the GSD of a sensor the fit never saw")
    p.add_argument("--json", default=None, help="write the fit's report here")
    p.add_argument("--dry-run", action="store_true", help="fit and report, ship nothing")
    p.add_argument("--splits-dir", default=None, help="folder of <source>.json splits")
    add_real_dev_option(p)
    p.set_defaults(func=run)


def _presentations(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        out = ()
    if not out or min(out) < 1 or max(out) > 8:
        raise ValueError(f"--presentations: multiples of the input in 1-8, got {text!r}")
    return out


def shown_gsds(native: float, coarser: int, max_gsd: float, rng: np.random.Generator
               ) -> list[float]:
    """The image's own GSD and ``coarser`` GSDs log-uniform in (native, max_gsd]."""
    if native >= max_gsd:
        return [native]
    return [native] + [float(np.exp(rng.uniform(np.log(native), np.log(max_gsd))))
                       for _ in range(coarser)]


def collect(counter, sources: list[str], presentations, coarser: int, max_gsd: float,
            seed: int, root=None, splits_dir: Path = SPLITS_DIR) -> list[dict]:
    """One row per (image, GSD shown): source, part, image, GSD, features (tiles, F)."""
    import cv2

    from onboard.scale_estimate import presented_features

    rng = np.random.default_rng(seed)
    rows = []
    for source in sources:
        native = REAL_DEV[source].gsd_m
        if native is None:
            raise ValueError(f"{source}: its GSD is not known, it cannot teach one")
        part_of = {i: part for part, ids in split_ids(source, splits_dir).items() for i in ids}
        for image in tqdm(load_real(source, root).images, desc=source, unit="image"):
            part = part_of.get(image.image_id)
            if part is None:
                continue
            pixels = image.load_pixels()
            gsd0 = image.meta.gsd_m or native
            for gsd in shown_gsds(gsd0, coarser, max_gsd, rng):
                shown = pixels if gsd == gsd0 else cv2.resize(
                    pixels, None, fx=gsd0 / gsd, fy=gsd0 / gsd, interpolation=cv2.INTER_AREA)
                if min(shown.shape[:2]) < 32:
                    continue
                feats = presented_features(counter, shown, presentations)
                if feats is None:
                    raise ValueError("the onboard counter exports no features to regress on")
                rows.append({"source": source, "part": part, "image": image.image_id,
                             "gsd_m": gsd, "delivered": gsd == gsd0, "features": feats})
    return rows


def fit(rows: list[dict], presentations, without: str | None = None) -> ScaleRegressor:
    """Ridge regression on the training rows (of every source but ``without``)."""
    from sklearn.linear_model import RidgeCV

    train = [r for r in rows if r["part"] == "train" and r["source"] != without]
    if not train:
        raise ValueError("no training images to fit the GSD regressor on")
    x = np.concatenate([r["features"] for r in train]).astype(np.float64)
    y = np.concatenate([np.full(len(r["features"]), np.log10(r["gsd_m"])) for r in train])
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)  # a constant feature carries nothing
    model = RidgeCV(alphas=ALPHAS).fit((x - mean) / std, y)
    return ScaleRegressor(tuple(int(p) for p in presentations), tuple(mean.tolist()),
                          tuple(std.tolist()), tuple(model.coef_.tolist()),
                          float(model.intercept_))


def report(rows: list[dict], regressor: ScaleRegressor, parts=("train", "val", "test")
           ) -> list[dict]:
    """Per (source, part): how far the scene estimates are from the true GSD, as factors."""
    out = []
    for source in dict.fromkeys(r["source"] for r in rows):
        for part in parts:
            mine = [r for r in rows if r["source"] == source and r["part"] == part]
            if not mine:
                continue
            entry = {"source": source, "part": part, "images": sum(r["delivered"] for r in mine)}
            for which, subset in (("delivered", [r for r in mine if r["delivered"]]),
                                  ("all_shown", mine)):
                err = np.array([np.log10(regressor.scene_gsd(r["features"]) / r["gsd_m"])
                                for r in subset])
                if not len(err):
                    continue
                entry[which] = {"scenes": len(err),
                                "median_factor": round(float(10 ** np.median(abs(err))), 3),
                                "worst_factor": round(float(10 ** abs(err).max()), 3),
                                "bias_factor": round(float(10 ** np.median(err)), 3)}
            out.append(entry)
    return out


def ship(regressor: ScaleRegressor, name: str, models_dir: Path) -> Path:
    card_file = card_path(name, "onboard", models_dir)
    card = load_card(card_file)
    path = regressor.save(card_file.parent / FILE)
    card.extra["scale_regressor"] = FILE
    card.extra["scale_regressor_sha256"] = sha256_of(path)
    write_card(card, card_file)
    return path


def run(args: argparse.Namespace) -> int:
    from onboard.counter import OnboardCounter

    presentations = _presentations(args.presentations)
    if args.coarser < 0 or not 0.01 <= args.max_gsd <= 100:
        raise ValueError("--coarser must be >= 0 and --max-gsd within 0.01-100 m/px")
    sources = parse_sources(args.sources)
    counter = OnboardCounter.shipped(args.model, Path(args.models_dir), threads=args.threads)
    rows = collect(counter, sources, presentations, args.coarser, args.max_gsd, args.seed,
                   args.real_dev, Path(args.splits_dir or SPLITS_DIR))
    regressor = fit(rows, presentations)
    table = report(rows, regressor)
    if args.loso:
        for source in sources:
            left_out = fit(rows, presentations, without=source)
            table += report([{**r, "part": "left out"} for r in rows
                             if r["source"] == source], left_out, parts=("left out",))
    for e in table:
        d, a = e.get("delivered", {}), e.get("all_shown", {})
        print(f"{e['source']:<22} {e['part']:<5} images {e['images']:>3}  as delivered: "
              f"median x{d.get('median_factor', float('nan')):.2f} worst "
              f"x{d.get('worst_factor', float('nan')):.2f} bias "
              f"x{d.get('bias_factor', float('nan')):.2f}  all shown ({a.get('scenes', 0)}): "
              f"median x{a.get('median_factor', float('nan')):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"model": args.model, "sources": sources, "presentations": list(presentations),
             "coarser": args.coarser, "max_gsd": args.max_gsd, "seed": args.seed,
             "fit_on": "train", "report": table}, indent=1))
    if not args.dry_run:
        print(f"wrote {ship(regressor, args.model, Path(args.models_dir))}")
    return 0

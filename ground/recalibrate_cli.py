"""``targetfuse uplink recalibrate``: refit a satellite's confidence calibration and onboard
error model from the tiles it downlinked, in the ground's store (``ground.recalibrate``:
exploration tiles weighted for the accepted tiles they stand for, a map per regime).

It reads the store the ground's settings name (``TARGETFUSE_GROUND_DB_PATH`` or
``DATABASE_URL``), takes the models in force for the satellite (the files of the bundle its
newest scene was planned under, where the uplink folder holds it and it has them, else the
pair's shipped files), fits, checks on held-back tiles, and writes what it found to ``--out``:
``recalibration.json`` (the evidence and each check, the satellite's and each region's) and
the accepted files (``confidence.json``, ``error_model.json``). With ``--build`` the
accepted files are signed into a bundle for that satellite (``uplink build``'s code).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from ground.recalibrate import HELD_BACK, MIN_EACH, MIN_TILES, in_force, recalibrate_satellite


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--satellite", required=True,
                   help="the satellite's link name (its scenes' sender)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for recalibration.json and the accepted files")
    p.add_argument("--min-tiles", type=int, default=MIN_TILES,
                   help=f"downlinked tiles needed before anything changes (default "
                        f"{MIN_TILES})")
    p.add_argument("--min-each", type=int, default=MIN_EACH,
                   help=f"exploration tiles, and tiles counted right and wrong, each, needed "
                        f"(right and wrong on both sides of the held-back split, per regime "
                        f"for its map; default {MIN_EACH})")
    p.add_argument("--held-back", type=float, default=HELD_BACK,
                   help=f"share of scenes held back to check the refit (default {HELD_BACK})")
    p.add_argument("--build", action="store_true",
                   help="sign the accepted files into a bundle for the satellite")


def base_models(settings, args, sender: str, version: int):
    """The confidence and error model in force for the satellite (its bundle's files where
    the uplink folder holds that bundle with them, else the pair's shipped files) and the
    sha256 of the onboard counter in force: the bundle's (a counter it brought, or the one
    it was fit for), None for the pair's shipped counter."""
    from shared.model_bundle import ModelBundle

    pair = ModelBundle.shipped(args.model or settings.model, "onboard",
                               args.models_dir or settings.models_dir)
    confidence, error_model, model_sha256 = pair.confidence, pair.error_model, None
    if version > 0:
        from ground.uplink import BundleShelf
        from shared.uplink.bundle import open_bundle, read_confidence, read_error_model
        from shared.uplink.keys import SigningKey, load_public_key

        key = args.key or settings.uplink_key_path()
        public = load_public_key(SigningKey(key).public)
        held = BundleShelf(args.dir or settings.uplink_folder(), public).get(version, sender)
        if held is None:
            raise ValueError(f"{sender}'s scenes were planned under bundle {version}, which "
                             "the uplink folder does not hold: the models in force are "
                             "unknown")
        files = open_bundle(held.path.read_bytes(), public).files
        model_sha256 = held.manifest.model_sha256
        if "confidence" in files:
            confidence = read_confidence(files["confidence"])
        if "error_model" in files:
            error_model = read_error_model(files["error_model"])
    if confidence is None:
        raise ValueError("the pair ships no confidence calibration to recalibrate")
    return confidence, error_model, model_sha256


def run(args: argparse.Namespace, settings) -> tuple[dict, dict[str, Path]]:
    """Fit and check; the report and the files written (role -> path)."""
    from ground.store import open_store

    store = open_store(settings)
    try:
        version = in_force(store, args.satellite)
        confidence, error_model, model_sha256 = base_models(settings, args, args.satellite,
                                                            version)
        whole, regions = recalibrate_satellite(
            store, args.satellite, confidence, error_model, min_tiles=args.min_tiles,
            min_each=args.min_each, held_back=args.held_back)
    finally:
        store.close()
    args.out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if whole.confidence is not None:
        written["confidence"] = args.out / "confidence.json"
        whole.confidence.save(written["confidence"])
    if whole.error_model is not None:
        written["error_model"] = whole.error_model.save(args.out / "error_model.json")
    # A bundle is fit for the counter in force: after an adaptation, the one it brought.
    report = {"satellite": whole.report(), "regions": [r.report() for r in regions],
              "for_model_sha256": model_sha256,
              "files": {k: str(v) for k, v in written.items()}}
    (args.out / "recalibration.json").write_text(json.dumps(report, indent=1, default=_num)
                                                 + "\n")
    return report, written


def _num(v):
    return asdict(v) if hasattr(v, "__dataclass_fields__") else float(v)

"""``targetfuse uplink``: build and sign an update bundle for the satellites, list those held.

``build`` takes the files (a confidence calibration, an error model, thresholds, a new
onboard ONNX counter: any of them), checks each as a satellite will, records a new counter's
counts on the pair's canary tiles (onnxruntime), signs the manifest with the ground's
Ed25519 key (made at first use, as the ground makes it at first start, when the default one
is missing) and writes ``bundle-<version>.tfb`` into the ground's uplink folder, where the
running ground offers it at the satellites' next contact (``ground.uplink``). ``list`` shows
the bundles there that verify. ``recalibrate`` refits a satellite's confidence calibration
and onboard error model on its exploration tiles (``ground.recalibrate_cli``) and, with
``--build``, signs what passed its checks into a bundle for that satellite. Defaults
follow the ground's settings (``TARGETFUSE_GROUND_*``: ``DB_PATH``, ``UPLINK_DIR``,
``UPLINK_SIGNING_KEY_FILE``). Also ``python -m ground.uplink_cli`` where only the ground is
installed (its image).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = ("build and sign an uplink bundle (calibration, error model, thresholds, a new "
        "onboard counter) for the satellites; list the bundles held")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("uplink", help=HELP, description=HELP)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    b = verbs.add_parser("build", help="sign a bundle of the given files into the uplink "
                                       "folder")
    b.add_argument("--confidence", type=Path, help="an onboard confidence calibration "
                                                  "(confidence.json)")
    b.add_argument("--error-model", type=Path, help="the value policy's error model "
                                                   "(error_model.json)")
    b.add_argument("--thresholds", type=Path,
                   help='the selection band as JSON: {"conf_p": .., "conf_q": ..}')
    b.add_argument("--conf-p", type=float, help="the band's lower threshold (or --thresholds)")
    b.add_argument("--conf-q", type=float, help="the band's upper threshold (or --thresholds)")
    b.add_argument("--onnx", type=Path, help="a new onboard counter (ONNX); its counts on "
                                            "the pair's canary tiles are recorded")
    b.add_argument("--version", type=int, default=None,
                   help="the bundle's version (default: one more than the newest held)")
    b.add_argument("--satellite", action="append", default=[],
                   help="a satellite's link name it is for (repeatable; default: every one)")
    b.add_argument("--note", default="", help="a line saying what the bundle is")
    b.add_argument("--model", default=None, help="the model pair (default: the ground's)")
    b.add_argument("--models-dir", type=Path, default=None)
    b.add_argument("--for-model-sha256", default=None,
                   help="the onboard counter the files are for (default: the pair's shipped "
                        "one; a new --onnx: that one)")
    _common(b)
    b.set_defaults(func=build)
    ls = verbs.add_parser("list", help="the bundles in the uplink folder that verify")
    _common(ls)
    ls.set_defaults(func=listing)
    r = verbs.add_parser("recalibrate", help="refit a satellite's confidence and onboard "
                                             "error model on its exploration tiles")
    from ground.recalibrate_cli import add_arguments

    add_arguments(r)
    r.add_argument("--model", default=None, help="the model pair (default: the ground's)")
    r.add_argument("--models-dir", type=Path, default=None)
    _common(r)
    r.set_defaults(func=recalibrate)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, default=None,
                   help="the Ed25519 signing key (default: the ground's, "
                        "uplink-signing.key beside its database)")
    p.add_argument("--dir", type=Path, default=None,
                   help="the uplink folder (default: the ground's, uplink/ beside its "
                        "database)")


def _settings():
    from ground.settings import GroundSettings

    return GroundSettings()


def _key_path(args, settings) -> Path:
    if args.key is not None:
        return args.key
    return settings.uplink_key_path()


def _thresholds(args) -> bytes | None:
    if args.thresholds is not None:
        if args.conf_p is not None or args.conf_q is not None:
            raise ValueError("give --thresholds or --conf-p/--conf-q, not both")
        return args.thresholds.read_bytes()
    band = {k: v for k, v in (("conf_p", args.conf_p), ("conf_q", args.conf_q))
            if v is not None}
    return json.dumps(band).encode() if band else None


def build(args: argparse.Namespace) -> int:
    held = sign_bundle(args)
    print(f"uplink bundle {held.version}: {held.path} ({held.size} bytes; "
          f"{', '.join(sorted(held.manifest.roles()))}"
          f"{'; for ' + ', '.join(args.satellite) if args.satellite else ''}); the ground "
          "offers it at each satellite's next contact")
    return 0


def sign_bundle(args: argparse.Namespace):
    """The files ``args`` names signed into the next bundle on the shelf (``uplink build``'s
    options), verified there; ``args.evidence`` (a recalibration's or an adaptation's report,
    optional) is kept beside it with the bundle's version and bytes, for the dashboard."""
    from ground.uplink import BundleShelf, evidence_name
    from shared.model_bundle import ModelBundle
    from shared.uplink.bundle import build as build_bundle
    from shared.uplink.keys import (
        SigningKey,
        load_private_key,
        load_public_key,
        make_signing_key,
    )
    from shared.uplink.parity import canary_batch, canary_counts, onnx_runner

    settings = _settings()
    files = {role: path.read_bytes() for role, path in (
        ("confidence", args.confidence), ("error_model", args.error_model),
        ("onnx", args.onnx)) if path is not None}
    band = _thresholds(args)
    if band is not None:
        files["thresholds"] = band
    if not files:
        raise ValueError("nothing to uplink: give --confidence, --error-model, --thresholds "
                         "(or --conf-p/--conf-q) or --onnx")
    key_path = _key_path(args, settings)
    if args.key is None and settings.uplink_signing_key_file is None:
        make_signing_key(key_path)  # the ground's own, as at its first start
    private = load_private_key(key_path)
    model = args.model or settings.model
    pair = ModelBundle.shipped(model, "onboard", args.models_dir or settings.models_dir)
    canary = None
    if "onnx" in files:
        tiles = pair.canary
        if tiles is None:
            raise ValueError(f"the pair {model} ships no canary tiles (its card's "
                             "canary_tiles): a new counter could not be checked onboard")
        run = onnx_runner(files["onnx"])
        canary = {"file_sha256": pair.card.extra["canary_tiles_sha256"],
                  "counts": canary_counts(run, canary_batch(tiles, _convention(pair)))}
    shelf_dir = args.dir or settings.uplink_folder()
    shelf = BundleShelf(shelf_dir, load_public_key(SigningKey(key_path).public))
    version = args.version if args.version is not None else shelf.next_version()
    blob = build_bundle(files, version=version, model=model,
                        model_sha256=args.for_model_sha256 or pair.card.sha256,
                        private_key=private, satellites=tuple(args.satellite),
                        canary=canary, note=args.note)
    path = shelf.put(blob, version)
    held = shelf.get(version, args.satellite[0] if args.satellite else "")
    if held is None:  # signed with a key whose .pub beside it is another one
        path.unlink()
        raise ValueError(f"the bundle does not verify with {key_path}'s public key")
    if getattr(args, "evidence", None) is not None:
        evidence = {**args.evidence, "bundle": {"version": version, "bytes": held.size}}
        (Path(shelf_dir) / evidence_name(version)).write_text(
            json.dumps(evidence, indent=1, default=float) + "\n")
    return held


def recalibrate(args: argparse.Namespace) -> int:
    """``uplink recalibrate`` (``ground.recalibrate_cli``); with ``--build``, the accepted
    files signed into a bundle for the satellite."""
    from ground.recalibrate_cli import run

    report, written = run(args, _settings())
    print(json.dumps(report["satellite"], indent=1))
    if not args.build:
        return 0
    if not written:
        print(f"no bundle: {report['satellite']['reason']}")
        return 0
    sat = report["satellite"]
    note = (f"recalibrated on {sat['tiles']} exploration tiles under bundle "
            f"{sat['bundle_version']}")
    return build(argparse.Namespace(
        confidence=written.get("confidence"), error_model=written.get("error_model"),
        onnx=None, thresholds=None, conf_p=None, conf_q=None, version=None,
        satellite=[args.satellite], note=note, model=args.model, models_dir=args.models_dir,
        for_model_sha256=report.get("for_model_sha256"), key=args.key, dir=args.dir,
        evidence=report))


def _convention(pair) -> str:
    from shared.preprocess import input_convention

    return input_convention(pair.card.extra)


def listing(args: argparse.Namespace) -> int:
    from ground.uplink import BundleShelf
    from shared.uplink.keys import SigningKey, load_public_key

    settings = _settings()
    key_path = _key_path(args, settings)
    public = load_public_key(SigningKey(key_path).public)
    for b in BundleShelf(args.dir or settings.uplink_folder(), public).bundles():
        d = b.as_dict()
        print(f"{d['version']:>6}  {d['created']}  {d['bytes']:>9} B  "
              f"{','.join(d['files'])}  {','.join(d['satellites']) or 'every satellite'}"
              f"  {d['note']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ground.uplink_cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["uplink", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"uplink: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``targetfuse`` command line: one entry point, a subcommand per job.

What it offers depends on what is installed: ``onboard`` with the onboard service,
``ground`` with the ground service (it needs torch), and with the research tooling (``lab``)
the data commands and the tour, plus, where torch imports, the live demo, training,
shipping, evaluation, calibration and the experiments. Every subcommand imports its code
only when it runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from shared.model_card import ModelIntegrityError


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# Every subcommand: (name, the module whose ``add_parser`` defines it, one line of help,
# what must be installed for it). Only the module of the command being run is imported, so
# ``targetfuse --help`` and ``targetfuse X --help`` do not pay for torch, onnxruntime or the
# services (tests/targetfuse/test_cli.py checks this table against the modules).
LAB_COMMANDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("data", "lab.data.cli", "read, split, draw, synthesise datasets", ("lab",)),
    ("demo", "lab.services.demo", "the main job: both services live, sample scenes",
     ("lab", "torch")),
    ("train", "lab.training.cli", "train the shallow (onboard) or deep (ground) counter",
     ("lab", "torch")),
    ("soup", "lab.training.soup",
     "interpolate a counter's weights toward fine-tuned continuations of it and keep the "
     "blend validation prefers", ("lab", "torch")),
    ("ship", "lab.shipping.ship", "export a training run's best checkpoint under models/",
     ("lab", "torch")),
    ("eval", "lab.evaluation.cli", "score the shipped onboard/ground pair on a dataset",
     ("lab", "torch")),
    ("eval-sources", "lab.evaluation.sources",
     "score a multi-class pair per real-dev source and class", ("lab", "torch")),
    ("report-counters", "lab.evaluation.report",
     "regenerate (or check) the counters' tables in models/README.md", ("lab", "torch")),
    ("calibrate", "lab.evaluation.calibrate",
     "calibrate tile size and error model of a counter pair", ("lab", "torch")),
    ("calibrate-sources", "lab.evaluation.calibrate_sources",
     "fit a multi-class pair's error model on its sources' training tiles", ("lab", "torch")),
    ("adapt-onboard", "lab.closed_loop.adapt",
     "fine-tune a satellite's onboard counter on its downlinked tiles with the ground's "
     "counts as targets, check it on held-back scenes, and sign it into an uplink bundle",
     ("lab", "torch")),
    ("fit-count-scale", "lab.shipping.count_scale",
     "fit each counter's per-class count scale on validation results", ("lab", "torch")),
    ("fit-scale-estimate", "lab.shipping.scale_fit",
     "fit the onboard counter's GSD regressor on the sources whose GSD is known",
     ("lab", "torch")),
    ("fit-class-scales", "lab.shipping.class_scale",
     "choose on validation the input scale the ground counts each class at",
     ("lab", "torch")),
    ("add-class-network", "lab.shipping.class_network",
     "add a second ground network for some classes when validation says it helps",
     ("lab", "torch")),
    ("eval-ground-options", "lab.evaluation.ground_options",
     "score the ground counter's options (deep, shallow, TTA, blends)", ("lab", "torch")),
    ("experiment", "lab.experiments.cli", "pipeline sweeps: CSV and PNG plots",
     ("lab", "torch")),
    ("link-experiment", "lab.experiments.link",
     "link experiments over kernel shaping: CMAE, goodput and time per rate and policy "
     "(root: network namespaces, tc)", ("lab", "torch")),
    ("shift-experiment", "lab.experiments.shift",
     "the closed loop on a left-out source: CMAE with and without it", ("lab", "torch")),
    ("report-shift", "lab.experiments.shift_report",
     "regenerate (or check) the shift experiment's tables and plot", ("lab",)),
    ("report-experiments", "lab.experiments.report",
     "regenerate (or check) the tables of docs/EXPERIMENTS.md", ("lab", "torch")),
    ("report-exploration", "lab.experiments.exploration_report",
     "regenerate (or check) the tables of exploration's cost in docs/PIPELINE.md", ("lab",)),
    ("report-readme", "lab.experiments.readme",
     "regenerate (or check) the README's headline table from the experiments' results",
     ("lab",)),
    ("faults", "lab.reliability.cli", "run the fault-injection suite (docs/RELIABILITY.md)",
     ("lab", "torch")),
    ("report-reliability", "lab.reliability.report",
     "regenerate (or check) the figures of docs/RELIABILITY.md", ("lab", "torch")),
    ("tour", "lab.data.tour", "a tour of the data layer and the counters", ("lab",)),
    ("plan-contacts", "lab.constellation.contact_plan",
     "contact windows and captures from orbits (offline)", ("lab",)),
    ("constellation-live", "lab.constellation.live",
     "3 satellites, 2 stations, 2 workers on PostgreSQL and NATS, a station and a worker "
     "killed (live)", ("lab",)),
    ("simulate-day", "lab.constellation.day",
     "a constellation's day, offline: passes, bytes, latency, backlog and CMAE, all "
     "stations vs one", ("lab",)),
    ("report-constellation", "lab.constellation.report",
     "regenerate (or check) the figures of docs/CONSTELLATION.md", ("lab",)),
    ("report-performance", "lab.performance.report",
     "regenerate (or check) the tables of docs/PERFORMANCE.md", ("lab",)),
]
# The services parse their own arguments (``--help`` lists the environment variables that
# configure them): ``targetfuse onboard ARGS`` is ``targetfuse-onboard ARGS``.
SERVICE_COMMANDS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("onboard", "onboard.serve", "run the onboard service (REST intake, counting, link)",
     ("onboard",)),
    # The ground service needs torch: offered only where it can be imported.
    ("ground", "ground.serve", "run the ground service (gRPC link end, REST, dashboard)",
     ("ground", "torch")),
    ("ground-worker", "ground.segment",
     "run one counting worker of the ground segment (PostgreSQL store, NATS queue)",
     ("ground", "torch")),
    ("uplink", "ground.uplink_cli", "build and sign an uplink bundle (calibration, error "
     "model, thresholds, a new onboard counter) for the satellites; list the bundles held",
     ("ground",)),
    ("stac", "ground.stac_cli", "write scenes of a ground store as STAC Items with their "
     "GeoJSON of tile counts (offline; no service running)", ("ground",)),
]
SERVICES = {"onboard", "ground", "ground-worker"}


def _offered() -> list[tuple[str, str, str, tuple[str, ...]]]:
    table = [LAB_COMMANDS[0], *SERVICE_COMMANDS, *LAB_COMMANDS[1:]]
    return [c for c in table if all(_installed(n) for n in c[3])]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``command``'s module is imported (every module with
    ``command="*"``: what the tests use to compare the table with the modules)."""
    parser = argparse.ArgumentParser(
        prog="targetfuse",
        description="Satellite/ground collaborative object counting.",
        epilog="Commands appear as their parts are installed: the services (onboard, "
               "ground) and the research tooling (lab). `targetfuse COMMAND --help` for one.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, text, _ in _offered():
        if name in SERVICES:
            # Parsed by the service itself (main below hands it the rest of the line).
            sub.add_parser(name, help=text, add_help=False)
        elif command in (name, "*"):
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    offered = {name: module for name, module, _, _ in _offered()}
    if argv and argv[0] in SERVICES and argv[0] in offered:
        return int(importlib.import_module(offered[argv[0]]).main(argv[1:]) or 0)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, ModelIntegrityError) as exc:
        # Bad input (a broken annotation file, a bad option value): say what and where,
        # no traceback.
        print(f"targetfuse {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

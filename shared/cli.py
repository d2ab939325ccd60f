"""The ``targetfuse`` command line: one entry point, a subcommand per job.

Subcommands that need heavy or side-specific packages import them only when they run, so
``targetfuse data ...`` works with the onboard dependencies alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared import data_cli, services_cli
from shared.model_card import ModelIntegrityError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="targetfuse",
        description="Satellite/ground collaborative object counting.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_cli.add_parser(sub)
    services_cli.add_parsers(sub)
    _add_ground_commands(sub)
    tour = sub.add_parser("tour", help="a tour of the data layer and the counters")
    tour.add_argument("--out", default="out/tour", help="where to write results")
    tour.add_argument("--real-dev", default=None,
                      help="folder of the real-dev datasets (default: $TARGETFUSE_REAL_DEV "
                           "or ../shared/data/real-dev)")
    tour.set_defaults(func=_run_tour)
    return parser


def _add_ground_commands(sub: argparse._SubParsersAction) -> None:
    """Training needs torch (the ground/training install); the onboard install has no torch,
    so these commands are offered only where it can be imported."""
    try:
        from ground import calibrate_cli, eval_cli, experiment_cli, ship, train_cli
    except ImportError as exc:
        if exc.name != "torch":
            raise
        return
    demo = sub.add_parser("demo", help="the main job: both services live, sample scenes")
    demo.add_argument("--out", default="out/demo", help="where the services keep their data")
    demo.add_argument("--real-dev", default=None,
                      help="folder of the real-dev datasets (default: $TARGETFUSE_REAL_DEV "
                           "or ../shared/data/real-dev)")
    demo.add_argument("--budget-fraction", type=float, default=0.10)
    demo.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    demo.set_defaults(func=_run_live_demo)
    train_cli.add_parser(sub)
    ship.add_parser(sub)
    eval_cli.add_parser(sub)
    calibrate_cli.add_parser(sub)
    experiment_cli.add_parser(sub)


def _run_tour(args: argparse.Namespace) -> int:
    from shared import demo

    return demo.run(args.out, args.real_dev)


def _run_live_demo(args: argparse.Namespace) -> int:
    from ground import live_demo

    return live_demo.run(args.out, args.real_dev, keep=args.keep,
                         budget_fraction=args.budget_fraction)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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

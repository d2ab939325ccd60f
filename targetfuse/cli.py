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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="targetfuse",
        description="Satellite/ground collaborative object counting.",
        epilog="Commands appear as their parts are installed: the services (onboard, "
               "ground) and the research tooling (lab).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if _installed("lab"):
        from lab.data import cli as data_cli

        data_cli.add_parser(sub)
    _add_service_commands(sub)
    if _installed("lab"):
        _add_lab_commands(sub)
    return parser


def _add_service_commands(sub: argparse._SubParsersAction) -> None:
    if _installed("onboard"):
        p = sub.add_parser("onboard",
                           help="run the onboard service (REST intake, counting, link)")
        p.set_defaults(func=_run_service("onboard"))
    # The ground service needs torch: offered only where it can be imported.
    if _installed("ground") and _installed("torch"):
        g = sub.add_parser("ground",
                           help="run the ground service (gRPC link end, REST, dashboard)")
        g.set_defaults(func=_run_service("ground"))
        w = sub.add_parser("ground-worker",
                           help="run one counting worker of the ground segment (PostgreSQL "
                                "store, NATS queue)")
        w.set_defaults(func=lambda args: importlib.import_module("ground.segment").main())
    if _installed("ground"):
        from ground import stac_cli

        stac_cli.add_parser(sub)


def _run_service(name: str):
    def run(args: argparse.Namespace) -> int:
        serve = importlib.import_module(f"{name}.serve")
        return serve.main()
    return run


def _add_lab_commands(sub: argparse._SubParsersAction) -> None:
    """Training and evaluation need torch (the ground and training install); without it
    only the data commands and the tour are offered."""
    try:
        from lab import demo, faults, ship
        from lab.evaluation import calibrate as calibrate_cli
        from lab.evaluation import calibrate_sources as calibrate_sources_cli
        from lab.evaluation import cli as eval_cli
        from lab.evaluation import count_scale as count_scale_cli
        from lab.evaluation import ground_options as ground_options_cli
        from lab.evaluation import report as report_cli
        from lab.evaluation import sources as eval_sources_cli
        from lab.experiments import cli as experiment_cli
        from lab.experiments import report as experiment_report_cli
        from lab.reliability_report import add_parser as add_reliability_report
        from lab.training import cli as train_cli
    except ImportError as exc:
        if exc.name != "torch":
            raise
    else:
        demo.add_parser(sub)
        train_cli.add_parser(sub)
        ship.add_parser(sub)
        eval_cli.add_parser(sub)
        eval_sources_cli.add_parser(sub)
        report_cli.add_parser(sub)
        calibrate_cli.add_parser(sub)
        calibrate_sources_cli.add_parser(sub)
        count_scale_cli.add_parser(sub)
        ground_options_cli.add_parser(sub)
        experiment_cli.add_parser(sub)
        experiment_report_cli.add_parser(sub)
        faults.add_parser(sub)
        add_reliability_report(sub)
    from lab import constellation_day, constellation_live, constellation_report, contact_plan, tour

    tour.add_parser(sub)
    contact_plan.add_parser(sub)
    constellation_live.add_parser(sub)
    constellation_day.add_parser(sub)
    constellation_report.add_parser(sub)


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

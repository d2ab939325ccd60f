"""``targetfuse faults``: the fault-injection suite's command, over either deployment: the
embedded one (``lab.faults``: one onboard and one ground service on SQLite) or, with
``--segment``, the ground segment (``lab.segment_faults``: a station and workers on PostgreSQL
and NATS). Its own module so that neither suite imports the other's entry point.
"""

from __future__ import annotations

import argparse

from lab.faults import RESULTS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lab.live import dev_nats, dev_postgres

    p = sub.add_parser("faults", help="run the fault-injection suite (docs/RELIABILITY.md)")
    p.add_argument("--out", default=str(RESULTS.parent),
                   help=f"folder to write {RESULTS.name} into (default: docs/reliability)")
    p.add_argument("--work", default="out/faults", help="scratch folder for the stores")
    p.add_argument("--scenarios", default=None, help="comma-separated names (default: all)")
    p.add_argument("--segment", action="store_true",
                   help="the ground segment's faults instead (a station and workers on "
                        "PostgreSQL and NATS): segment_faults.json")
    p.add_argument("--postgres", default=dev_postgres(),
                   help="with --segment: an admin URL (a database per run is made there)")
    p.add_argument("--nats", default=dev_nats(), help="with --segment: a NATS JetStream URL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.segment:
        from lab.segment_faults import run_segment

        return run_segment(args)
    from lab.faults import run_embedded

    return run_embedded(args)

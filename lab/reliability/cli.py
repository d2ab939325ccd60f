"""``targetfuse faults``: the fault-injection suite's command, over either deployment: the
embedded one (``faults``: one onboard and one ground service on SQLite) or, with
``--segment``, the ground segment (``segment_faults``: a station and workers on PostgreSQL
and NATS), after which the bad inputs are played against the running segment
(``segment_bad_inputs``). Its own module so that neither suite imports the other's entry
point, and the segment's runs and its bad inputs are put together here.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from lab.reliability.faults import RESULTS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lab.services.live import dev_nats, dev_postgres

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
        return run_segment(args)
    from lab.reliability.faults import run_embedded

    return run_embedded(args)


def run_segment_suite(work: Path, admin: str, nats_url: str,
                      names: list[str] | None = None, bad_inputs: bool = True) -> dict:
    """The segment's fault runs (``names``, default all) after the fault-free one, then
    (``bad_inputs``) the bad inputs against a running segment
    (``lab.reliability.segment_bad_inputs``)."""
    from ground.settings import GroundSettings
    from lab.reliability.faults import scene_png
    from lab.reliability.segment_bad_inputs import run_segment_bad_inputs
    from lab.reliability.segment_faults import ACK_WAIT_S, SCENARIOS, run_scenario

    png = scene_png()
    reference = run_scenario("no fault", work, png, admin, nats_url, None)
    rows = [reference] + [run_scenario(n, work, png, admin, nats_url, reference)
                          for n in names or list(SCENARIOS) if n != "no fault"]
    bad = run_segment_bad_inputs(work, admin, nats_url) if bad_inputs else None
    return {"segment": {"stations": 1, "workers": 2, "store": "PostgreSQL",
                        "queue": "NATS JetStream", "ack_wait_s": ACK_WAIT_S,
                        "max_deliver": GroundSettings.model_fields["nats_max_deliver"].default},
            "scenarios": rows,
            "totals": {"runs": len(rows), "lost": sum(r["lost"] for r in rows),
                       "counted_twice": sum(r["counted_twice"] for r in rows),
                       "stuck": sum(r["stuck"] for r in rows),
                       "left_behind": sum(sum(r["left_behind"].values()) + r["left_in_queue"]
                                          for r in rows),
                       "server_errors": sum(r["server_errors"] for r in rows),
                       "innocent_quarantined": sum(len(r["innocent_quarantined"])
                                                   for r in rows),
                       "counts_differing": sum(len(r["tiles_differing"]) for r in rows),
                       **({"bad_inputs": len(bad["cases"]),
                           "bad_inputs_clear_4xx": sum(c["clear_4xx"] for c in bad["cases"]),
                           "bad_inputs_left_behind": bad["left_behind"],
                           "bad_inputs_server_errors": bad["server_errors"]} if bad else {})},
            **({"bad_inputs": bad} if bad else {})}


def run_segment(args) -> int:
    """``targetfuse faults --segment``: exits 2, saying why, without PostgreSQL or NATS; 1
    when a run lost, doubled or stranded anything."""
    from lab.out_folder import out_folder
    from lab.reliability.faults import print_row
    from lab.reliability.segment_faults import SCENARIOS, SEGMENT_RESULTS
    from lab.services.segment import missing

    if reason := missing(args.postgres, args.nats):
        print(f"the segment's fault suite cannot run: {reason}")
        return 2
    names = args.scenarios.split(",") if args.scenarios else None
    unknown = [n for n in names or [] if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"no segment scenario {unknown}; there are {list(SCENARIOS)}")
    out = out_folder(args.out, SEGMENT_RESULTS.name) / SEGMENT_RESULTS.name
    work = Path(args.work) / "segment"
    shutil.rmtree(work, ignore_errors=True)
    result = run_segment_suite(work, args.postgres, args.nats, names)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for r in result["scenarios"]:
        print_row(r)
        print(f"      quarantined {r['quarantined']} (poisoned {r['poisoned']}, tries "
              f"{r['poison_tries']}), redeliveries {r['redeliveries']}, left in queue "
              f"{r['left_in_queue']}, counts = reference: {r['counts_match_reference']}"
              + "".join(f"; {e}" for e in r["events"]))
    t = result["totals"]
    print(f"  bad inputs: {t['bad_inputs_clear_4xx']} of {t['bad_inputs']} a clear 4xx, "
          f"REJECTED or off the queue; left behind {t['bad_inputs_left_behind']}; wrote {out}")
    return int(bool(t["lost"] or t["counted_twice"] or t["stuck"] or
                    t["innocent_quarantined"] or t["counts_differing"] or
                    t["bad_inputs_clear_4xx"] < t["bad_inputs"] or
                    t["bad_inputs_left_behind"] or t["bad_inputs_server_errors"]))

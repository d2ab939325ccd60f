"""``targetfuse stac``: a ground store's scenes as STAC Items and GeoJSON, offline.

For runs without a service (a store copied off a ground, a test bench): each scene becomes
``<out>/<id>.json``, a STAC Item with the Label extension, and ``<out>/<id>.tiles.geojson``,
its tiles' counts, exactly as ``GET /v1/scenes/{id}/stac`` and ``.../tiles.geojson`` serve
them (``ground.stac``) but linked by a relative href; totals by the ground's aggregation rules
(``--discarded``, ``--uncounted``: as the service's ``discarded_tiles`` and
``uncounted_tiles``). The work is imported only when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stac", help="write scenes of a ground store as STAC Items with their "
                                    "GeoJSON of tile counts (offline; no service running)")
    p.add_argument("--db", required=True, type=Path,
                   help="the ground's SQLite store (TARGETFUSE_GROUND_DB_PATH)")
    p.add_argument("--out", required=True, type=Path, help="folder to write into")
    p.add_argument("--scene", action="append", default=None,
                   help="a scene id (repeatable; default: every scene in the store)")
    # The choices as the ground's settings spell them (not imported: --help stays fast).
    p.add_argument("--discarded", choices=("onboard", "zero"), default="onboard",
                   help="discarded tiles add their onboard count or nothing (the ground's "
                        "TARGETFUSE_GROUND_DISCARDED_TILES; default %(default)s)")
    p.add_argument("--uncounted", choices=("zero", "context"), default="context",
                   help="uncounted tiles add their context's mean or nothing (the ground's "
                        "TARGETFUSE_GROUND_UNCOUNTED_TILES; default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ground.stac import write
    from ground.store import SQLiteStore
    from shared.pipeline.aggregation import AggregationRules

    if not args.db.is_file():
        raise FileNotFoundError(f"no ground store at {args.db}")
    rules = AggregationRules(args.discarded, args.uncounted)
    store = SQLiteStore(args.db)
    try:
        for sid in args.scene or store.scene_ids():
            item_path, labels = write(store, sid, args.out, rules)
            print(f"{sid}: {item_path} (labels {labels.name})")
    finally:
        store.close()
    return 0

"""``targetfuse stac``: a ground store's scenes as STAC Items and GeoJSON, offline.

For runs without a service (a store copied off a ground, a test bench): each scene becomes
``<out>/<id>.json``, a STAC Item with the Label extension, and ``<out>/<id>.tiles.geojson``,
its tiles' counts, exactly as ``GET /v1/scenes/{id}/stac`` and ``.../tiles.geojson`` serve
them (``ground.stac``) but linked by a relative href. The work is imported only when it runs.
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ground.stac import write
    from ground.store import SQLiteStore

    if not args.db.is_file():
        raise FileNotFoundError(f"no ground store at {args.db}")
    store = SQLiteStore(args.db)
    try:
        for sid in args.scene or store.scene_ids():
            item_path, labels = write(store, sid, args.out)
            print(f"{sid}: {item_path} (labels {labels.name})")
    finally:
        store.close()
    return 0

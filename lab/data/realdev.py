"""Where the real development imagery lives, and how each of its datasets is read.

The data are never part of the repository: they are read from ``$TARGETFUSE_REAL_DEV`` or,
by default, ``../shared/data/real-dev`` beside the project checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared.annotations import Dataset
from shared.formats import read_dataset
from shared.paths import PROJECT_ROOT


@dataclass(frozen=True)
class RealDataset:
    folder: str
    fmt: str
    gsd_m: float | None  # when the format does not say and the source does
    expected_objects: int  # as published with the data (checked by the tests)


REAL_DEV = {
    # Pleiades imagery is delivered at 0.5 m (pan-sharpened).
    "airbus_aircraft": RealDataset("airbus_aircraft", "airbus-csv", 0.5, 2625),
    "dota8": RealDataset("dota8", "yolo-obb", None, 133),
    # KIT AIS frames state no GSD; ~0.13 m fits their cars (~35 px for ~4.5 m).
    "kit_cars": RealDataset("kit_cars", "yolo", 0.13, 316),
    # DOTA labelTxt headers: gsd:0.08 for the Vaihingen crops, gsd:null for Google Earth.
    "nwpu_vhr10": RealDataset("nwpu_vhr10", "dota", None, 1404),
    # Roboflow stretched every image to 640 x 640: no GSD survives.
    "ships_google_earth": RealDataset("ships_google_earth", "yolo", None, 1368),
}


def add_real_dev_option(parser) -> None:
    parser.add_argument("--real-dev", default=None,
                        help="folder of the real-dev datasets (default: $TARGETFUSE_REAL_DEV "
                             "or ../shared/data/real-dev)")


def real_dev_root(override: str | Path | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("TARGETFUSE_REAL_DEV")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "real-dev"


def load_real(name: str, root: str | Path | None = None) -> Dataset:
    spec = REAL_DEV[name]
    return read_dataset(real_dev_root(root) / spec.folder, spec.fmt, gsd_m=spec.gsd_m)

"""Where the real development imagery lives, and how each of its datasets is read.

The data are never part of the repository: they are read from ``$TARGETFUSE_REAL_DEV`` or,
by default, ``../shared/data/real-dev`` beside the project checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab.data.formats import read_dataset
from shared.annotations import Dataset
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
    # Roboflow stretched every image to 600 x 600, and the airports are at very different
    # scales (a whole airport in some images, one apron in others): no GSD survives. The
    # README's "about 1-1.5 m" (median aircraft 21 x 22 px) is a typical value, not a scene's.
    "gdit_aerial_airport": RealDataset("gdit_aerial_airport", "dota", None, 4923),
    # VEDAI tiles are 12.5 cm Utah orthophotos (README).
    "vedai_partial": RealDataset("vedai_partial", "vedai", 0.125, 195),
    # Drone frames at about 0.05 m (README: Mavic Air 2 at ~400 ft); the labels agree: median
    # car box long side 91 px (4.6 m), jet ski 55 px (2.75 m). The count is every label the
    # reader returns, docks (277) and boat lifts (255) included: 30 boats, 79 jet skis, 16
    # cars.
    "aerial_maritime_drone": RealDataset("aerial_maritime_drone", "yolo", 0.05, 657),
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

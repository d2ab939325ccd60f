"""Orbits, contact plans and imaging plans, offline.

``tle`` reads two-line element sets and generates a larger constellation from them as a
documented pattern; ``stations`` reads ground-station coordinates; ``contacts`` propagates
the orbits (skyfield over sgp4) into contact windows with a link rate per window;
``imaging`` decides which targets each satellite captures when. The contact plan's JSON
format they write is ``shared.orbits.plan``: the onboard service reads it without any orbit
code, so the services' images carry neither skyfield nor sgp4. Nothing here touches the
network: skyfield's built-in timescale, no ephemeris files, no TLE downloads.
"""

import os
from pathlib import Path

# The orbit data shipped with the project (data/PROVENANCE.md says where each file is from).
SHIPPED = Path(__file__).resolve().parent / "data"


def orbits_root() -> Path:
    """The folder the constellation commands read ``sentinel2.tle`` and
    ``ground_stations.csv`` from: ``$TARGETFUSE_ORBITS`` when set, else the shipped copy."""
    env = os.environ.get("TARGETFUSE_ORBITS")
    if env:
        root = Path(env)
        if not root.is_dir():
            raise ValueError(f"TARGETFUSE_ORBITS={env!r} is not a folder (unset it to use "
                             f"the shipped orbit data in {SHIPPED})")
        return root
    return SHIPPED

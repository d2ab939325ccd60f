"""A GeoTIFF's own georeference: its footprint and GSD, through the limits every input meets.

The intake reads it when it resolves a scene (``onboard.scene_job``), so a file georeferenced
only in itself is sized by its real GSD before the 202; the worker's window reader
(``onboard.scene_pixels.RasterSource``) reports the same for the scene it opened.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from shared import limits
from shared.annotations import Footprint


def georeference_of(src) -> tuple[Footprint | None, float | None]:
    """An open rasterio dataset's footprint and GSD (metres, projected CRS only), when it
    has them."""
    t = src.transform
    if t.is_identity:
        return None, None
    crs = src.crs
    fp = Footprint((t.c, t.a, t.b, t.f, t.d, t.e), crs.to_string() if crs else "local")
    gsd = abs(t.a) if crs is not None and crs.is_projected and t.b == 0 else None
    return fp, gsd


def file_georeference(path: Path) -> tuple[Footprint | None, float | None]:
    """``georeference_of`` the TIFF at ``path`` (its header only: no pixels are read)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # a plain TIFF is fine: it has none
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return georeference_of(src)


def checked_georeference(fp: Footprint | None, gsd: float | None
                         ) -> tuple[Footprint | None, float | None, list[str]]:
    """A file's own footprint and GSD through the rule every input meets
    (``shared.limits``): what fails it is dropped with a warning instead of failing the
    scene (the header is the file's, not the caller's: the scene is still counted)."""
    said = []
    if gsd is not None:
        try:
            limits.check_gsd(gsd, "the file's GSD")
        except limits.OutOfRange as exc:
            said.append(f"{exc}: ignored; the GSD is estimated from the image instead")
            gsd = None
    if fp is not None:
        try:
            limits.check_geotransform(fp.geotransform, "the file's geotransform")
            limits.check_crs(fp.crs, "the file's CRS")
        except limits.OutOfRange as exc:
            said.append(f"{exc}: the scene is kept without a footprint")
            fp = None
    return fp, gsd, said

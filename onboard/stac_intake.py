"""A STAC Item as a scene's metadata: what the intake reads from it, after validating it.

The intake's ``metadata`` field may hold a STAC Item (a GeoJSON Feature with
``stac_version``) instead of the home-made metadata object. It is validated offline
(``shared.stac_check``: pystac's core schema, and the extension fields read here; a
malformed Item is a 422 naming the field), then read into the same
:class:`~onboard.scene_metadata.SceneMetadata` the rest of the service knows:

- ``id`` -> ``scene_id`` (so the ground's STAC answer has the Item's id);
- ``properties.datetime`` (else ``start_datetime``) -> ``capture_time``;
- ``properties.gsd`` (metres) -> ``gsd_m``; without it, a ``proj:transform`` in a projected
  CRS in metres gives the pixel size;
- ``proj:transform`` with ``proj:code`` (projection v2) or ``proj:epsg`` (v1) ->
  ``geotransform`` and ``crs``;
- ``platform``, ``constellation``, ``instruments``, the ``bbox``, and ``targetfuse:classes``
  (the classes to count) are kept with the scene.

Once the image's size is known (:func:`complete`), ``proj:shape`` must match it; and an Item
with a footprint (``bbox``) but no transform, sent with an image that carries no
georeference of its own, gets a north-up WGS84 geotransform spanning the bbox, so the
ground can put its tiles on a map. A GeoTIFF's own georeference is used otherwise (the
worker reads it from the file).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, ValidationError

from onboard.scene_metadata import IntakeError, SceneMetadata
from shared import limits
from shared.geo import from_stac_transform
from shared.scene_ids import RULE as SCENE_ID_RULE
from shared.scene_ids import valid_scene_id
from shared.stac_check import StacInvalid, check


class StacSceneMetadata(SceneMetadata):
    """The home-made metadata plus what an Item says about the scene's origin."""

    stac_id: str
    platform: str | None = None
    constellation: str | None = None
    instruments: list[str] | None = None
    stac_bbox: list[float] | None = None
    proj_shape: list[int] | None = Field(None, min_length=2, max_length=2)
    stac_unvalidated_extensions: list[str] = []


def looks_like_item(raw: dict) -> bool:
    return raw.get("type") == "Feature" or "stac_version" in raw


def _bad(field: str, message: str) -> IntakeError:
    return IntakeError(422, f"STAC Item: {field}: {message}")


def _crs(props: dict) -> str | None:
    code = props.get("proj:code")
    if code is None and props.get("proj:epsg") is not None:
        code = f"EPSG:{props['proj:epsg']}"
    if code is None:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        CRS.from_string(code)
        limits.check_crs(code)
    except (CRSError, limits.OutOfRange):
        field = "proj:code" if "proj:code" in props else "proj:epsg"
        raise _bad(f"properties.{field}", f"{code} is not a CRS this service knows") from None
    return code


def _pixel_metres(gt: tuple, crs: str | None) -> float | None:
    """The pixel size in metres a north-up transform gives in a projected CRS in metres."""
    if crs is None or gt[2] != 0 or gt[4] != 0 or abs(gt[1]) != abs(gt[5]):
        return None
    from rasterio.crs import CRS

    c = CRS.from_string(crs)
    return abs(gt[1]) if c.is_projected and c.linear_units in ("metre", "meter") else None


def from_item(raw: dict) -> StacSceneMetadata:
    """Validate an Item and read the scene's metadata from it; IntakeError (422) if bad."""
    try:
        unvalidated = check(raw)
    except StacInvalid as exc:
        raise _bad(exc.field, exc.message) from None
    props = raw["properties"]
    item_id = raw["id"]
    if not valid_scene_id(item_id):
        raise _bad("id", f"{item_id!r} cannot be a scene id here ({SCENE_ID_RULE})")
    when = props.get("datetime") or props.get("start_datetime")
    try:
        capture = datetime.fromisoformat(when) if when else None
    except ValueError:
        field = "datetime" if props.get("datetime") else "start_datetime"
        raise _bad(f"properties.{field}", f"{when!r} is not an RFC 3339 time") from None
    crs = _crs(props)
    gt = None
    if props.get("proj:transform") is not None:
        try:
            gt = limits.check_geotransform(from_stac_transform(props["proj:transform"]))
        except ValueError as exc:
            raise _bad("properties.proj:transform", str(exc)) from None
    if raw.get("bbox") is not None:
        try:
            limits.check_bbox(raw["bbox"])
        except limits.OutOfRange as exc:
            raise _bad("bbox", str(exc)) from None
    gsd = props.get("gsd")
    if gsd is None and gt is not None:
        gsd = _pixel_metres(gt, crs)
    fields = {"scene_id": item_id, "stac_id": item_id, "capture_time": capture,
              "gsd_m": gsd, "geotransform": list(gt) if gt else None,
              "crs": crs or "local", "classes": props.get("targetfuse:classes"),
              "platform": props.get("platform"), "constellation": props.get("constellation"),
              "instruments": props.get("instruments"), "stac_bbox": raw.get("bbox"),
              "proj_shape": props.get("proj:shape"),
              "stac_unvalidated_extensions": unvalidated}
    try:
        return StacSceneMetadata(**fields)
    except ValidationError as exc:  # the STAC field each wrong value came from
        names = {"gsd_m": "properties.gsd", "classes": "properties.targetfuse:classes",
                 "platform": "properties.platform", "instruments": "properties.instruments",
                 "constellation": "properties.constellation", "stac_bbox": "bbox",
                 "proj_shape": "properties.proj:shape"}
        e = exc.errors()[0]
        field = names.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "item"
        raise _bad(field, e["msg"].removeprefix("Value error, ")) from None


def _georeferenced(path: Path, kind: str) -> bool:
    if kind != "tiff":
        return False
    import rasterio

    with rasterio.open(path) as src:
        return not src.transform.is_identity


def complete(meta: SceneMetadata, path: Path, kind: str, width: int,
             height: int) -> SceneMetadata:
    """What an Item's metadata can say only once the image's size is known (any other
    metadata comes back as it is)."""
    if not isinstance(meta, StacSceneMetadata):
        return meta
    if meta.proj_shape is not None and list(meta.proj_shape) != [height, width]:
        raise _bad("properties.proj:shape", f"the Item says {meta.proj_shape[0]}x"
                   f"{meta.proj_shape[1]} (rows x columns); the image is {height}x{width}")
    box = meta.stac_bbox
    if meta.geotransform is None and box and not _georeferenced(path, kind):
        # STAC's bbox is WGS84 (lon, lat; 4 numbers, or 6 with heights): the image is taken
        # to be north-up over it, which is what an Item without proj fields can tell.
        west, south, east, north = (box[0], box[1], box[2], box[3]) if len(box) == 4 \
            else (box[0], box[1], box[3], box[4])
        if east <= west or north <= south:
            raise _bad("bbox", "an empty or antimeridian-crossing box cannot place the "
                       "image; give proj:transform and proj:code instead")
        gt = [west, (east - west) / width, 0.0, north, 0.0, -(north - south) / height]
        return meta.model_copy(update={"geotransform": gt, "crs": "EPSG:4326"})
    return meta

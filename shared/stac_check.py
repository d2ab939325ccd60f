"""Validating STAC Items offline, with pystac and the JSON schemas this project carries.

pystac ships the STAC 1.1.0 core schemas; the extension schemas an Item names in
``stac_extensions`` are normally fetched from the web, which neither service can reach. So the
schemas of the extensions the services read or write (projection 1.1/1.2/2.0, eo 1.1/2.0,
label 1.0.1, and the PROJJSON schema projection refers to) are copied into
``shared/stac_schemas`` (see its README for where from) and pre-loaded into pystac's
validator. An extension with no local schema is not validated (``check`` names it) rather
than refused: real Items carry many (view, sat, grid, ...) that the counter never reads.

A failure is :class:`StacInvalid` naming the field (a JSON path such as
``properties.datetime``) and what is wrong with it, from the best jsonschema match.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).with_name("stac_schemas")
CORE_VERSION = "1.1.0"  # the core schema pystac ships

# schema URI -> local file
LOCAL = {
    **{f"https://stac-extensions.github.io/projection/{v}/schema.json":
       f"projection-{v}.json" for v in ("v1.1.0", "v1.2.0", "v2.0.0")},
    **{f"https://stac-extensions.github.io/eo/{v}/schema.json": f"eo-{v}.json"
       for v in ("v1.1.0", "v2.0.0")},
    "https://stac-extensions.github.io/label/v1.0.1/schema.json": "label-v1.0.1.json",
    "https://proj.org/schemas/v0.7/projjson.schema.json": "projjson-v0.7.json",
    # projection v1.1.0 refers to PROJJSON v0.5; v0.7 only added optional members, so a
    # v0.5 document validates against it too.
    "https://proj.org/schemas/v0.5/projjson.schema.json": "projjson-v0.7.json",
}


class StacInvalid(ValueError):
    """An Item that is not valid STAC; ``field`` is the JSON path of what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@functools.cache
def validator():
    """pystac's jsonschema validator with the local schemas in its cache (so no fetch)."""
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    v = JsonSchemaSTACValidator()
    for uri, name in LOCAL.items():
        schema = json.loads((SCHEMAS / name).read_text())
        schema["$id"] = uri  # a cached copy answers for the URI it is asked under
        v.schema_cache[uri] = schema
    return v


def _where(err) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    return path or "item"


def _leaves(err):
    if not err.context:
        yield err
    for e in err.context:
        yield from _leaves(e)


def _raise_best(exc) -> None:
    """The error a person can act on: a plain one (a missing or mistyped field) before the
    "valid under none of" ones; inside those, the deepest failure of the branches tried,
    skipping the branches that fail only because the geometry is another type."""
    errors = exc.source if isinstance(exc.source, list) else []
    if not errors:
        raise StacInvalid("item", str(exc).splitlines()[-1]) from None
    plain = [e for e in errors if e.validator not in ("oneOf", "anyOf", "allOf", "not")]
    if plain:
        best = plain[0]
    else:
        leaves = [e for e in _leaves(errors[0]) if e.validator not in ("enum", "const")
                  and not (e.validator == "type" and e.validator_value == "null")]
        best = max(leaves or [errors[0]], key=lambda e: len(e.absolute_path))
    raise StacInvalid(_where(best), best.message[:300]) from None


def check(item: Any) -> list[str]:
    """Validate a STAC Item (a dict) against the core and each locally known extension
    schema; returns the extension URIs that could not be validated offline. Raises
    StacInvalid."""
    from pystac import STACObjectType
    from pystac.errors import STACValidationError

    if not isinstance(item, dict):
        raise StacInvalid("item", "a STAC Item is a JSON object")
    if item.get("type") != "Feature":
        raise StacInvalid("type", "a STAC Item's type is \"Feature\"")
    version = item.get("stac_version")
    if not isinstance(version, str) or not version.startswith("1."):
        raise StacInvalid("stac_version", f"{version!r}: a STAC 1.x Item is expected")
    exts = item.get("stac_extensions", [])
    if not isinstance(exts, list) or not all(isinstance(e, str) for e in exts):
        raise StacInvalid("stac_extensions", "a list of schema URIs is expected")
    v = validator()
    # 1.0 and 1.1 Items share their structure; only 1.1.0's core schema ships with pystac,
    # and it pins stac_version, so a 1.0 Item is checked as if it said 1.1.0.
    core = copy.copy(item)
    core["stac_version"] = CORE_VERSION
    try:
        v.validate_core(core, STACObjectType.ITEM, CORE_VERSION)
    except STACValidationError as exc:
        _raise_best(exc)
    unknown = []
    for uri in exts:
        if uri.split("#")[0] not in LOCAL:
            unknown.append(uri)
            continue
        try:
            v.validate_extension(item, STACObjectType.ITEM, CORE_VERSION, uri.split("#")[0])
        except STACValidationError as exc:
            _raise_best(exc)
    return unknown

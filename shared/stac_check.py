"""Validating STAC Items offline: the core schema pystac ships, and the extension fields read here.

pystac ships the STAC 1.1.0 core schemas; the extension schemas an Item names in
``stac_extensions`` are normally fetched from the web, which neither service can reach. So
the core is validated with pystac's own validator, and the fields of the extensions the
services read or write (projection, eo, label) are checked here, rule by rule, against what
those extensions define (types, lengths, ranges, the label extension's structure). An
extension with no rules here is not validated (``check`` names it) rather than refused: real
Items carry many (view, sat, grid, ...) that the counter never reads.

A failure is :class:`StacInvalid` naming the field (a JSON path such as
``properties.datetime``) and what is wrong with it, from the best jsonschema match.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

CORE_VERSION = "1.1.0"  # the core schema pystac ships
# Extensions whose fields are checked here, by their schema URI's prefix.
CHECKED = ("https://stac-extensions.github.io/projection/",
           "https://stac-extensions.github.io/eo/",
           "https://stac-extensions.github.io/label/")


class StacInvalid(ValueError):
    """An Item that is not valid STAC; ``field`` is the JSON path of what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@functools.cache
def validator():
    """pystac's jsonschema validator (core schemas shipped with pystac: no fetch)."""
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    return JsonSchemaSTACValidator()


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(v: Any, lengths: tuple[int, ...]) -> bool:
    return isinstance(v, list) and len(v) in lengths and all(_number(x) for x in v)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _overviews(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(o, dict) and isinstance(o.get("property_key"), str | None)
        and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                and isinstance(c.get("count"), int) and not isinstance(c.get("count"), bool)
                for c in o.get("counts", [])) for o in v)


# field -> (rule, what it must be): the extensions' definitions of the fields used here.
RULES = {
    "proj:transform": (lambda v: _numbers(v, (6, 9)), "6 or 9 numbers"),
    "proj:code": (lambda v: v is None or isinstance(v, str), "a string like EPSG:32631"),
    "proj:epsg": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
                  "an integer EPSG code"),
    "proj:shape": (lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v),
                   "two positive integers (rows, columns)"),
    "proj:bbox": (lambda v: _numbers(v, (4, 6)), "4 or 6 numbers"),
    "eo:cloud_cover": (lambda v: _number(v) and 0 <= v <= 100, "a number from 0 to 100"),
    "eo:snow_cover": (lambda v: _number(v) and 0 <= v <= 100, "a number from 0 to 100"),
    "label:type": (lambda v: v in ("vector", "raster"), '"vector" or "raster"'),
    "label:properties": (lambda v: v is None or _strings(v), "a list of names, or null"),
    "label:tasks": (_strings, "a list of task names"),
    "label:methods": (_strings, "a list of method names"),
    "label:description": (lambda v: isinstance(v, str), "a string"),
    "label:overviews": (_overviews, "a list of {property_key, counts: [{name, count}]}"),
}


def _check_fields(props: dict) -> None:
    for field, (rule, what) in RULES.items():
        if field in props and not rule(props[field]):
            raise StacInvalid(f"properties.{field}", f"{props[field]!r}"[:80] +
                              f" is not valid: {what}")


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
    """Validate a STAC Item (a dict) against the core schema and the extension fields
    checked here; returns the extension URIs whose fields are not checked. Raises
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
    props = item.get("properties")
    if isinstance(props, dict):
        _check_fields(props)
    return [uri for uri in exts if not uri.startswith(CHECKED)]

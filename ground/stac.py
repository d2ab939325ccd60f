"""A scene's counts in the forms EO tools read: a STAC Item (Label extension) and GeoJSON.

``tiles_geojson`` is a FeatureCollection with one Feature per tile of the scene's grid. Its
geometry is the tile's outline in WGS84 (lon, lat; RFC 7946) when the scene's footprint and
an EPSG CRS are known (``crs="scene"``: in the scene's own CRS, named in a ``crs`` member as
GeoJSON 2008 did), else null; its properties are flat, so GIS tools can style by them:
``index``, ``row``, ``col``, ``pixel_bbox``, ``decision`` (what the satellite did with the
tile), ``provenance`` (where its final count came from), ``confidence``, ``ground_counted``,
the final count per class under the class's name (plus ``total``), and the onboard count
per class under ``onboard:<class>`` (plus ``onboard_total``). Counts are aggregated by
``ground.scenes.scene_report``'s rules (the ground's setting, ``rules``), so the features add
up to the scene's totals.

``stac_item`` is a STAC 1.1 Item (made with pystac) for the scene: its footprint as geometry
(WGS84, null when unknown), ``datetime`` the capture time (else when the ground first heard
of the scene, ``targetfuse:capture_time_known`` false), ``gsd`` and the projection fields
when known, and the Label extension: ``label:type`` vector, ``label:tasks`` counting and
regression, ``label:properties`` the classes, ``label:overviews`` one per class with the
total and the onboard-only total as statistics; its ``labels`` asset is the GeoJSON.

Both come from the store alone: the service serves them (``/v1/scenes/{id}/stac``,
``/v1/scenes/{id}/tiles.geojson``) and ``write`` puts them in a folder for offline use.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from ground.scenes import scene_classes, scene_report
from ground.store import Store
from shared import geo
from shared.errors import documented
from shared.pipeline.aggregation import DEFAULT_RULES, AggregationRules, aggregate_classes
from shared.wire import link_pb2
from shared.wire.convert import summary_arrays, summary_class_counts

GEOJSON = "application/geo+json"
STAC_ITEM = "application/geo+json"  # a STAC Item is a GeoJSON Feature
WGS84 = "EPSG:4326"


def _decision(t: link_pb2.TileDecision) -> str:
    return link_pb2.Decision.Name(t.decision).lower()


def _footprint(header) -> tuple[tuple, str] | None:
    if not header.HasField("footprint") or len(header.footprint.geotransform) != 6:
        return None
    return tuple(header.footprint.geotransform), header.footprint.crs or "local"


def _to_wgs84(crs: str):
    """A function mapping a ring of the scene's CRS to WGS84; None when the CRS is not an
    EPSG code (a "local" footprint is only good for recognising revisits)."""
    if geo.epsg_code(crs) is None:
        return None
    if geo.epsg_code(crs) == 4326:
        return lambda ring: ring
    from pyproj import Transformer

    t = Transformer.from_crs(crs, WGS84, always_xy=True)

    def convert(ring):
        xs, ys = t.transform([p[0] for p in ring], [p[1] for p in ring])
        return [[round(x, 9), round(y, 9)] for x, y in zip(xs, ys, strict=True)]
    return convert


def _r(v) -> float | None:
    return None if v is None or np.isnan(v) else round(float(v), 3)


def tiles_geojson(store: Store, scene_id: str, crs: str = "wgs84", *,
                  rules: AggregationRules = DEFAULT_RULES) -> dict | None:
    """The scene's tiles as a FeatureCollection (None: no such scene). ``crs``: "wgs84" or
    "scene"; ``rules``: how discarded and uncounted tiles count."""
    if crs not in ("wgs84", "scene"):
        raise ValueError(f"crs must be wgs84 or scene, not {crs!r}")
    header = store.header(scene_id)
    if header is None:
        return None
    report = scene_report(store, scene_id, rules=rules)
    names = scene_classes(header)
    g = header.grid
    fp = _footprint(header)
    convert = None
    if fp is not None:
        convert = _to_wgs84(fp[1]) if crs == "wgs84" else (lambda ring: ring)
    summary = store.summary(scene_id)
    per_class_final, onboard_table, decisions, confidence = {}, None, {}, {}
    if summary is not None:
        action, _, reused, contexts = summary_arrays(summary)
        onboard_table = summary_class_counts(summary, len(names))
        class_ground = store.ground_class_counts(scene_id)
        if len(names) == 1:  # as scene_report: the tile's count is its one class's count
            class_ground = {i: [c] for i, (c, _) in store.ground_counts(scene_id).items()
                            if c is not None and not np.isnan(c)}
        class_ground = {i: v for i, v in class_ground.items() if len(v) == len(names)}
        per_class_final = aggregate_classes(names, action, onboard_table, reused,
                                            class_ground, contexts,
                                            discarded=rules.discarded,
                                            uncounted=rules.uncounted)
        for t in summary.tiles:
            decisions[t.index] = _decision(t)
            confidence[t.index] = round(t.confidence, 4) if t.HasField("confidence") else None
    received = store.ground_counts(scene_id)
    per_tile = report.get("per_tile") or []
    features = []
    for r, c, x0, y0, x1, y1 in geo.tile_boxes(g.width, g.height, g.tile_size, g.rows,
                                                 g.cols):
        i = r * g.cols + c
        props = {"index": i, "row": r, "col": c, "pixel_bbox": [x0, y0, x1, y1],
                 "decision": decisions.get(i), "confidence": confidence.get(i),
                 "provenance": per_tile[i]["provenance"] if i < len(per_tile) else None,
                 "ground_counted": received.get(i, (None,))[0] is not None,
                 "total": per_tile[i]["count"] if i < len(per_tile) else None}
        for k, name in enumerate(names):
            props[name] = _r(per_class_final[name].tile_counts[i]) if per_class_final \
                else None
            props[f"onboard:{name}"] = _r(onboard_table[i, k]) if onboard_table is not None \
                else None
        props["onboard_total"] = per_tile[i]["onboard"] if i < len(per_tile) else None
        geometry = None
        if fp is not None and convert is not None:
            geometry = {"type": "Polygon",
                        "coordinates": [convert(geo.pixel_ring(fp[0], x0, y0, x1, y1))]}
        features.append({"type": "Feature", "id": i, "geometry": geometry,
                         "properties": props})
    out = {"type": "FeatureCollection", "features": features,
           "scene_id": header.scene_id, "classes": names, "complete": report.get("complete", False)}
    if crs == "scene" and fp is not None and geo.epsg_code(fp[1]) is not None:
        out["crs"] = {"type": "name", "properties": {
            "name": f"urn:ogc:def:crs:EPSG::{geo.epsg_code(fp[1])}"}}
    return out


def _when(header, store: Store, scene_id: str) -> tuple[datetime, bool]:
    if header.capture_time:
        try:
            t = datetime.fromisoformat(header.capture_time)
            return (t if t.tzinfo else t.replace(tzinfo=UTC)), True
        except ValueError:
            pass
    received = getattr(store, "received_at", None)
    at = received(scene_id) if received else None
    return datetime.fromtimestamp(at or 0.0, UTC), False


def stac_item(store: Store, scene_id: str, self_href: str | None = None,
              labels_href: str = "tiles.geojson", *,
              rules: AggregationRules = DEFAULT_RULES) -> dict | None:
    """The scene as a STAC Item dict (None: no such scene); its totals by ``rules``."""
    import warnings

    import pystac
    from pystac.extensions.projection import ProjectionExtension

    with warnings.catch_warnings():
        # pystac marks its Label extension deprecated (the extension is "pilot", not
        # maintained); it is still the STAC way to say "these are counts", which is asked.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pystac.extensions.label import (
            LabelExtension,
            LabelOverview,
            LabelStatistics,
            LabelType,
        )

    header = store.header(scene_id)
    if header is None:
        return None
    report = scene_report(store, scene_id, rules=rules)
    names = scene_classes(header)
    g = header.grid
    fp = _footprint(header)
    geometry, bbox = None, None
    if fp is not None and (convert := _to_wgs84(fp[1])) is not None:
        ring = convert(geo.scene_ring(fp[0], g.width, g.height))
        geometry, bbox = {"type": "Polygon", "coordinates": [ring]}, geo.bbox([ring])
    when, known = _when(header, store, scene_id)
    props = {"targetfuse:capture_time_known": known,
             "targetfuse:complete": bool(report.get("complete")),
             "targetfuse:total": report.get("total"),
             "targetfuse:onboard_total": report.get("onboard_total"),
             "targetfuse:tiles": report["tiles"], "targetfuse:tile_size": g.tile_size,
             "targetfuse:onboard_model": header.onboard_model,
             "targetfuse:ground_model": header.ground_model,
             "targetfuse:policy": header.policy}
    if report.get("gsd_m"):
        props["gsd"] = report["gsd_m"]
        props["targetfuse:gsd_estimated"] = report["gsd_estimated"]
    if ":" in scene_id:  # the scene's key: its sender's id, under the sender's name
        props["targetfuse:sender"] = scene_id.rpartition(":")[0]
    item = pystac.Item(header.scene_id, geometry, bbox, when, props)
    if fp is not None:
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.code = fp[1] if geo.epsg_code(fp[1]) is not None else None
        proj.transform = geo.to_stac_transform(fp[0])
        proj.shape = [g.height, g.width]
    by_class = report.get("by_class") or {}
    overviews = [LabelOverview.create(property_key=c, statistics=[
        LabelStatistics.create("total", by_class[c]["total"]),
        LabelStatistics.create("onboard_total", by_class[c]["onboard_total"])])
        for c in names if c in by_class]
    label = LabelExtension.ext(item, add_if_missing=True)
    label.apply(label_description=f"object counts per tile ({', '.join(names)}): the "
                "satellite's onboard counts, replaced by the ground's where tiles were "
                "downlinked", label_type=LabelType.VECTOR, label_properties=list(names),
                label_tasks=["counting", "regression"], label_methods=["automated"],
                label_overviews=overviews or None)
    label.add_geojson_labels(labels_href, title="tile counts")
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    if self_href:
        d["links"].append({"rel": "self", "href": self_href, "type": STAC_ITEM})
    return d


def write(store: Store, scene_id: str, folder: Path,
          rules: AggregationRules = DEFAULT_RULES) -> tuple[Path, Path]:
    """``<folder>/<scene_id>.json`` (the Item) and ``<scene_id>.tiles.geojson`` beside it,
    the Item's labels asset pointing at it by a relative href."""
    folder = Path(folder)
    collection = tiles_geojson(store, scene_id, rules=rules)
    if collection is None:
        raise ValueError(f"no scene {scene_id} in the store")
    folder.mkdir(parents=True, exist_ok=True)
    labels = folder / f"{scene_id}.tiles.geojson"
    labels.write_text(json.dumps(collection))
    item_path = folder / f"{scene_id}.json"
    item_path.write_text(json.dumps(stac_item(store, scene_id, labels_href=labels.name,
                                              rules=rules), indent=1))
    return item_path, labels


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


def add_routes(app, store, resolve=lambda scene: scene,
               rules: AggregationRules = DEFAULT_RULES) -> None:
    """``GET /v1/scenes/{id}/stac`` and ``/v1/scenes/{id}/tiles.geojson`` on ``app``;
    ``store()`` gives the service's store, ``resolve(id)`` the key of the scene meant,
    ``rules`` how its totals treat discarded and uncounted tiles."""
    @app.get("/v1/scenes/{scene_id}/stac", response_class=GeoJSONResponse,
             responses=documented(401, 404))
    def scene_stac(scene_id: str, request: Request):
        """The scene as a STAC Item with the Label extension; its ``labels`` asset is the
        tiles' GeoJSON."""
        labels = str(request.url_for("scene_tiles_geojson", scene_id=scene_id))
        item = stac_item(store(), resolve(scene_id), self_href=str(request.url),
                         labels_href=labels, rules=rules)
        if item is None:
            raise HTTPException(404, f"no scene {scene_id}")
        return GeoJSONResponse(item)

    @app.get("/v1/scenes/{scene_id}/tiles.geojson", name="scene_tiles_geojson",
             response_class=GeoJSONResponse, responses=documented(401, 404, 422))
    def scene_tiles(scene_id: str, crs: Literal["wgs84", "scene"] = "wgs84"):
        """Every tile as a GeoJSON Feature: its outline (WGS84, or the scene's CRS with
        ``crs=scene``; null when the footprint is unknown) and its counts per class, onboard
        and final, decision, confidence and provenance."""
        collection = tiles_geojson(store(), resolve(scene_id), crs, rules=rules)
        if collection is None:
            raise HTTPException(404, f"no scene {scene_id}")
        return GeoJSONResponse(collection)


"""A scene's job: what it is counted at, decided once at intake and queued typed.

``resolve`` decides, from the upload's metadata (or STAC Item) and the file:

1. the GSD and where it came from: the metadata's (``"metadata"``), else a GeoTIFF's own
   georeference in a projected CRS (``"file"``, through ``shared.limits``: a value no sensor
   has is dropped with a warning and the scene marked for an estimate), else unknown; the
   worker may then estimate it from the pixels (``with_estimated_gsd``, ``"estimated"``: it
   needs the counter and the pixels) and sizes the job again by the same rule;
2. the footprint: the metadata's, else the file's;
3. the tile size the scene is first cut at, by the one rule (``TileRule.first``: the tiling
   table's calibrated size at this GSD with adaptive tiling, else the natural size, the
   counter's input at its GSD), and how many tiles that makes; a scene of more than
   ``MAX_TILES`` tiles (the link's limit for one scene), or whose tile would be larger than
   the memory limit allows a tile, is refused (``SceneRefused``, a 413 at the intake). The
   planner may only make tiles larger than this size, so a scene under the cap stays under.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from onboard.georeference import checked_georeference, file_georeference
from shared.annotations import Footprint
from shared.pipeline.tiling import TilingEntry, TilingTable, first_tile_size, tiles_for
from shared.preprocess import tile_px, unknown_gsd_warning
from shared.tile_grid import MAX_TILES

GSD_SOURCES = ("metadata", "file", "estimated")


class SceneRefused(ValueError):
    """A scene no tiling can carry: too many tiles for the link, or tiles too large."""


@dataclass(frozen=True)
class TileRule:
    """How a scene at a GSD is cut: the counter's input size and GSD, its pair's tiling
    table, whether adaptive tiling is on, and the largest tile the memory limit allows."""

    input_size: int
    model_gsd_m: float | None
    tiling: TilingTable | None = None
    adaptive: bool = True
    max_tile_side: int | None = None

    @classmethod
    def of(cls, counter, adaptive: bool, max_tile_side: int | None = None) -> TileRule:
        """The rule of a counter with its pair's files (``counter.bundle``)."""
        return cls(counter.input_size, counter.card.model_gsd_m, counter.bundle.tiling,
                   adaptive, max_tile_side)

    def natural(self, gsd: float | None) -> int:
        """Source pixels a side that make one counter input at the counter's GSD."""
        return tile_px(self.input_size, self.model_gsd_m, gsd)

    def entry(self, gsd: float | None) -> TilingEntry | None:
        return self.tiling.lookup(gsd) if self.tiling else None

    def first(self, gsd: float | None) -> int:
        return first_tile_size(self.natural(gsd), self.entry(gsd), self.adaptive)

    def check(self, width: int, height: int, gsd: float | None) -> tuple[int, int]:
        """(tile size, tiles) of a scene, or SceneRefused when no link or memory limit
        allows it."""
        size = self.first(gsd)
        if self.max_tile_side is not None and size > self.max_tile_side:
            raise SceneRefused(f"at {gsd:g} m/px a tile would be {size} px a side, more than "
                               f"the {self.max_tile_side} px one tile may cost within the "
                               "memory limit; resample the scene to a coarser GSD first")
        n = tiles_for(width, height, size)
        if n > MAX_TILES:
            raise SceneRefused(f"{width}x{height} pixels at {size} px tiles make {n} tiles, "
                               f"more than the link carries for one scene ({MAX_TILES}); "
                               "send it in parts")
        return size, n


@dataclass(frozen=True)
class SceneJob:
    scene_id: str
    path: str
    width: int
    height: int
    gsd_m: float | None = None
    gsd_source: str | None = None  # one of GSD_SOURCES; None: unknown
    footprint: Footprint | None = None
    classes: list[str] | None = None  # None: every class the counter counts
    capture_time: str | None = None
    tile_size: int | None = None  # what it is first cut at; None: not sized yet
    tiles: int | None = None
    warnings: tuple[str, ...] = ()
    file_gsd_refused: bool = False  # the file's GSD failed the limits: estimate one

    def sized(self, rule: TileRule) -> SceneJob:
        """This job with its tile size and count by ``rule`` (SceneRefused if too many)."""
        size, n = rule.check(self.width, self.height, self.gsd_m)
        return replace(self, tile_size=size, tiles=n)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SceneJob:
        raw = json.loads(text)
        fp = raw.pop("footprint")
        return cls(**{**raw, "warnings": tuple(raw["warnings"])},
                   footprint=Footprint(tuple(fp["geotransform"]), fp["crs"]) if fp else None)


def resolve(scene_id: str, path: Path | str, meta: dict, size: tuple[int, int],
            rule: TileRule | None, georeferenced_file: bool = False) -> SceneJob:
    """The job of a scene of ``size`` (width, height) pixels at ``path`` with metadata
    ``meta`` (a queue record: ``SceneMetadata`` as JSON); ``georeferenced_file``: the file is
    a TIFF whose own georeference counts; ``rule`` None: not sized here (the worker sizes
    it). Raises SceneRefused."""
    gsd = meta.get("gsd_m")
    source = "metadata" if gsd else None
    fp = Footprint(tuple(meta["geotransform"]), meta.get("crs", "local")) \
        if meta.get("geotransform") else None
    said: list[str] = []
    refused = False
    if georeferenced_file:
        file_fp, file_gsd, said = checked_georeference(*file_georeference(Path(path)))
        refused = bool(said) and file_gsd is None and not gsd
        if not gsd and file_gsd:
            source = "file"
        fp, gsd = fp or file_fp, gsd or file_gsd
    job = SceneJob(scene_id, str(path), size[0], size[1], gsd, source, fp,
                   meta.get("classes"), meta.get("capture_time"), warnings=tuple(said),
                   file_gsd_refused=refused)
    return job.sized(rule) if rule is not None else job


def with_estimated_gsd(job: SceneJob, pixels, counter, rule: TileRule, estimate: bool
                       ) -> SceneJob:
    """The job with its GSD estimated from the image (the pair's GSD regressor on
    ``counter``'s features, else the candidate whose features lie closest to its training
    imagery: ``onboard.scale_estimate``) when nobody gave one and ``estimate`` (the
    settings' ``estimate_gsd``) asks for it, or the file's own GSD was refused; sized again
    by ``rule`` (the estimate may make more tiles than the intake saw: SceneRefused). The
    warnings say what the GSD is and where it came from."""
    said = list(job.warnings)
    if not job.gsd_m and not job.file_gsd_refused:
        said.append(unknown_gsd_warning(counter.card.model_gsd_m))
    if not job.gsd_m and (estimate or job.file_gsd_refused):
        # A file whose own header gives a GSD no sensor has: the image's estimate.
        from onboard.scale_estimate import estimate_gsd

        gsd = estimate_gsd(counter, pixels)[0]
        if gsd:
            said = [w for w in said if not w.startswith("ground sample distance unknown: "
                                                        "tiles")]
            said.append(f"ground sample distance unknown: estimated {gsd:.3g} m/px from the "
                        "image (onboard/scale_estimate.py); give gsd_m when it is known")
            return replace(job, gsd_m=gsd, gsd_source="estimated",
                           warnings=tuple(said)).sized(rule)
        if job.file_gsd_refused:
            said.append(unknown_gsd_warning(counter.card.model_gsd_m))
    return replace(job, warnings=tuple(said))


def queued_before_jobs(scene_id: str, path: str, meta: dict) -> SceneJob:
    """The job of a scene a store queued before jobs were resolved at intake: resolved now
    from its record, unsized (the worker sizes it)."""
    try:
        return resolve(scene_id, path, meta, (meta.get("width", 0), meta.get("height", 0)),
                       None, georeferenced_file=meta.get("format") == "tiff")
    except Exception:  # noqa: BLE001 (an unreadable file fails when the worker opens it)
        return resolve(scene_id, path, meta, (0, 0), None)

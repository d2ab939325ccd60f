"""Processing accepted scenes off the request path: decode, plan, queue for the link.

Each scene goes through ``shared.pipeline.scene.plan_scene`` exactly as in the offline
simulator (same budgets, scene-relative: the downlink budget is ``budget_fraction`` of the
scene's raw tile bytes, capped by what the current or next contact window, and those opening
within ``plan_horizon_s``, can still carry beyond what is queued already; the energy budget
is ``energy_fraction`` of what counting every tile costs). Its header, summary and
downlinked tiles (resized to the counter input, JPEG at the chosen quality, in checksummed
chunks) go into the outbox in the same transaction that marks the scene ``downlinking``.

Memory is bounded by the settings, not by the scene (``open_scene``). A GeoTIFF is read
window by window (``RasterSource``): no more than one tile's pixels are in memory at a time,
through a GDAL block cache sized from the memory limit. PNG and JPEG have no random access:
a small one is decoded whole; a larger one is decoded strip by strip into a tiled scratch
TIFF (``onboard.strips``) read the same way, except interlaced PNGs and progressive JPEGs,
which only decode whole (the intake holds them to ``whole_decode_pixels``). Per tile, the
plan keeps counts, confidence and a descriptor in memory; its uint8 thumbnail and, up to
``tile_store_bytes``, its counter input (the tile resized to the counter's input: also what
a resized downlink sends) go to scratch files (``shared.pipeline.tiles.SpillStore``), so a
tile is read from the scene once: counting it and encoding it for the downlink read the
kept input back.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from onboard.counter import OnboardCounter
from onboard.georeference import georeference_of
from onboard.scene_job import SceneJob, TileRule, resolve
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared import limits
from shared.annotations import Footprint
from shared.errors import public
from shared.imageio import decodable_by_rows, header_size, read_rgb
from shared.pipeline.budgets import full_onboard_energy, raw_tile_bytes
from shared.pipeline.codec import downlink_pixels, encode_tile
from shared.pipeline.decisions import DOWNLINK
from shared.pipeline.dedup import RevisitCache
from shared.pipeline.energy import EnergyModel
from shared.pipeline.quicklook import fitted
from shared.pipeline.scene import SceneBudgets, SceneCounter, ScenePlan, plan_scene
from shared.pipeline.tiles import PreparedTiles, prepare_tiles
from shared.preprocess import unknown_gsd_warning
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks
from shared.wire.convert import scene_header, scene_summary

log = logging.getLogger("targetfuse.onboard.processing")



class RasterSource:
    """A GeoTIFF read window by window: ``shape`` and 2-D slicing like an RGB array, so the
    pipeline can crop tiles from a scene far larger than memory. Tracks the largest window it
    was asked for (the bound on what is in memory at once)."""

    def __init__(self, path: Path):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        with warnings.catch_warnings():  # a plain TIFF is fine: georeference() says None
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.src = rasterio.open(path)
        if self.src.dtypes[0] != "uint8":
            self.src.close()
            raise ValueError(f"GeoTIFF pixels must be 8-bit, got {self.src.dtypes[0]}")
        self.indexes = [1, 2, 3] if self.src.count >= 3 else [1, 1, 1]
        self.shape = (self.src.height, self.src.width, 3)
        self.largest_window_px = 0

    def __getitem__(self, key) -> np.ndarray:
        from rasterio.windows import Window

        ys, xs = key
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        self.largest_window_px = max(self.largest_window_px, (y1 - y0) * (x1 - x0))
        bands = self.src.read(indexes=self.indexes, window=Window(x0, y0, x1 - x0, y1 - y0))
        return np.ascontiguousarray(bands.transpose(1, 2, 0))

    def georeference(self) -> tuple[Footprint | None, float | None]:
        """The file's own footprint and GSD (metres, projected CRS only), when it has them."""
        return georeference_of(self.src)

    def close(self) -> None:
        self.src.close()


def read_scene(path: Path):
    """The scene's pixels: a window-by-window reader for GeoTIFF, a decoded array otherwise."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return RasterSource(path)
    return read_rgb(path)


def strip_decoded(path: Path, settings: OnboardSettings) -> bool:
    """Whether a PNG or JPEG is decoded strip by strip rather than whole: when it can be,
    and its RGB would take more than 1/16 of the memory limit (smaller ones decode whole:
    faster, and well inside the limit)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return False
    size = header_size(path)
    return size is not None and size[0] * size[1] * 3 > settings.memory_limit_bytes // 16 \
        and decodable_by_rows(path)


@contextmanager
def open_scene(path: Path, settings: OnboardSettings, scratch: Path) -> Iterator:
    """The scene's pixels for as long as the block runs, under a GDAL block cache of
    ``settings.gdal_cache()``: a window-by-window reader (GeoTIFF, or a large PNG or JPEG
    decoded by strips into a scratch TIFF in ``scratch``, deleted after), or a decoded
    array (a small PNG or JPEG)."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=settings.gdal_cache()):
        path = Path(path)
        if not strip_decoded(path, settings):
            pixels = read_scene(path)
            try:
                yield pixels
            finally:
                if isinstance(pixels, RasterSource):
                    pixels.close()
            return
        from onboard.strips import transcode

        scratch.mkdir(parents=True, exist_ok=True)
        tmp = transcode(path, scratch / f"{path.stem}-{threading.get_ident()}.strips.tif")
        try:
            source = RasterSource(tmp)
            try:
                yield source
            finally:
                source.close()
        finally:
            tmp.unlink(missing_ok=True)


class SceneProcessor:
    def __init__(self, settings: OnboardSettings, db: ScenesDB, counter: OnboardCounter,
                 energy: EnergyModel | None = None, rule: TileRule | None = None):
        """``rule``: how scenes are cut (the one the intake sized their jobs by; default:
        this counter's, with this configuration's adaptive tiling)."""
        self.settings, self.db, self.counter = settings, db, counter
        self.energy = energy or EnergyModel()
        # The pair's tables come with its counter's files (one bundle, loaded once).
        bundle = counter.bundle
        self.error_model = bundle.error_model
        self.cfg = settings.pipeline_config()
        self.rule = rule or TileRule.of(counter, self.cfg.adaptive_tiling,
                                        settings.max_tile_side())
        if self.cfg.policy == "value" and self.error_model is None:
            raise ValueError(f"the value policy needs {bundle.files.error_model}")
        self.cache = RevisitCache(max_bytes=settings.revisit_cache())
        self.scratch = Path(settings.data_dir) / "scratch"
        for leftover in self.scratch.glob("*.strips.tif"):  # a crash's, nothing refers to it
            leftover.unlink(missing_ok=True)
        # Contexts need scikit-learn: imported now, at start-up, rather than by the first
        # scene (1.4-1.7 s on the flight computer's one core).
        import sklearn.cluster  # noqa: F401
        import sklearn.metrics  # noqa: F401
        self.schedule = settings.schedule()
        self.inference_seconds = 0.0
        self.on_tiles = None  # callback(decision names), e.g. metrics
        # The uplink (onboard/bundles.py): its keeper applies a staged bundle between
        # scenes (updates.between_scenes) and sets the version in force, sent in each header.
        self.updates = None
        self.bundle_version = 0

    def raw_bytes(self, pixels, natural: int, first: int, prepare) -> int:
        """``raw_tile_bytes`` of the scene; from the plan's own prepared tiles when the plan
        starts at the natural size and sends them unresized (the same JPEGs at the same
        quality): a whole pass over the scene (reading and encoding every tile) saved."""
        resized = self.cfg.sends_resized and self.counter.input_size < natural
        if first == natural and not resized:
            return int(prepare(natural).sizes[self.cfg.raw_quality].sum())
        return raw_tile_bytes(pixels, natural, self.cfg.raw_quality)

    def budgets(self, pixels: np.ndarray, gsd: float | None, first: int | None = None,
                prepare=None) -> tuple[float, float, int]:
        """Byte budget, energy budget (J) and natural tile size for a scene (``first``: the
        tile size planning starts at; ``prepare``: its memo of prepared tiles)."""
        natural = self.rule.natural(gsd)
        raw = raw_tile_bytes(pixels, natural, self.cfg.raw_quality) if prepare is None \
            else self.raw_bytes(pixels, natural, first or natural, prepare)
        full = full_onboard_energy(pixels, natural, self.energy,
                                   self.counter.card.flops_per_tile)
        budget = self.settings.budget_fraction * raw
        now = time.time()
        window_at = self.schedule.next_open(now)
        if not self.schedule.unlimited:
            # The throttle plans with the bytes the current (or next) window, and those
            # opening within the horizon, can carry (at each window's own rate when a
            # contact plan gives one).
            left = 0.0 if window_at is None else self.schedule.bytes_within(
                window_at, self.settings.plan_horizon_s, self.settings.link_rate_bytes_s)
            left -= self.db.outbox.stats()["bytes_queued"]
            budget = max(0.0, min(budget, left))
        return budget, self.settings.energy_fraction * full, natural

    def quicklook(self, pixels, budget: float, block: int
                  ) -> tuple[tuple[bytes, int, int] | None, dict]:
        """The scene's browse image when it is on and fits its share of the byte budget
        (its bytes are then taken from the budget), and what happened, for the answer;
        read in ``block`` windows (the tile size: a COG's native tiles, once each)."""
        st = self.settings
        return fitted(pixels, st.quicklook_px, st.quicklook_quality,
                      st.quicklook_max_budget_share * budget, block)

    def process(self, scene_id: str, path: str, meta: dict) -> dict:
        """Resolve a scene's job here (what the intake does for a queued one) and run it:
        for callers that hand scenes straight to the processor."""
        path = Path(path)
        with open_scene(path, self.settings, self.scratch) as pixels:
            job = resolve(scene_id, path, meta, (pixels.shape[1], pixels.shape[0]), self.rule,
                          georeferenced_file=path.suffix.lower() in (".tif", ".tiff"))
            return self._process(job, pixels)

    def run(self, job: SceneJob) -> dict:
        """Plan a queued scene's job, downlink queued with it."""
        with open_scene(Path(job.path), self.settings, self.scratch) as pixels:
            if job.tile_size is None:  # not sized at intake (queued before jobs were)
                job = replace(job, width=pixels.shape[1], height=pixels.shape[0])
                job = job.sized(self.rule)
            return self._process(job, pixels)

    def with_gsd(self, job: SceneJob, pixels) -> SceneJob:
        """The job with its GSD estimated from the image when nobody gave one and the
        settings ask for it (or the file's own GSD was refused), sized again by the same
        rule (the estimate may make more tiles than the intake saw: SceneRefused); the
        warnings say what the GSD is and where it came from."""
        said = list(job.warnings)
        if not job.gsd_m and not job.file_gsd_refused:
            said.append(unknown_gsd_warning(self.counter.card.model_gsd_m))
        if not job.gsd_m and (self.settings.estimate_gsd or job.file_gsd_refused):
            # A file whose own header gives a GSD no sensor has: the image's estimate.
            from onboard.scale_estimate import estimate_gsd

            gsd = estimate_gsd(self.counter, pixels)[0]
            if gsd:
                said = [w for w in said if not w.startswith("ground sample distance unknown: "
                                                            "tiles")]
                said.append(f"ground sample distance unknown: estimated {gsd:g} m/px from the "
                            "image (features closest to the counter's training imagery); "
                            "give gsd_m when it is known")
                return replace(job, gsd_m=gsd, gsd_source="estimated",
                               warnings=tuple(said)).sized(self.rule)
            if job.file_gsd_refused:
                said.append(unknown_gsd_warning(self.counter.card.model_gsd_m))
        return replace(job, warnings=tuple(said))

    def _process(self, job: SceneJob, pixels) -> dict:
        if self.updates is not None:  # before the scene, never during it
            self.updates.between_scenes()
        job = self.with_gsd(job, pixels)
        for w in job.warnings:
            log.warning(w, extra={"scene_id": job.scene_id})
        prepared: dict[int, PreparedTiles] = {}

        def prepare(size: int) -> PreparedTiles:  # shared by the budgets and the plan
            if size not in prepared:
                prepared[size] = prepare_tiles(pixels, size, self.cfg, self.counter.input_size,
                                               spill_dir=self.scratch,
                                               spill_bytes=self.settings.tile_store_bytes)
            return prepared[size]

        try:
            return self._plan(job, pixels, prepare, prepared)
        finally:
            for prep in prepared.values():
                prep.close()

    def _plan(self, job: SceneJob, pixels, prepare, prepared: dict[int, PreparedTiles]) -> dict:
        gsd, first = job.gsd_m, job.tile_size
        t0 = time.perf_counter()
        budget, energy_j, natural = self.budgets(pixels, gsd, first, prepare)
        look, look_report = self.quicklook(pixels, budget, first)
        look_bytes = len(look[0]) if look else 0
        budget -= look_bytes
        classes = list(job.classes or self.counter.classes)
        channels = self.counter.channels(classes)

        def count_fn(i: int, tile: np.ndarray, size: int):
            return self.counter.count_tile(i, tile, size, channels)

        counting = SceneCounter(count_fn, float(self.counter.card.flops_per_tile), natural,
                                input_size=self.counter.input_size, n_classes=len(classes))
        plan = plan_scene(pixels, job.scene_id, counting,
                          SceneBudgets(budget, energy_j, self.energy), self.cfg,
                          footprint=job.footprint, tiling=self.rule.entry(gsd), cache=self.cache,
                          error_model=self.error_model, prepare=prepare)
        self.inference_seconds += time.perf_counter() - t0
        messages = self.messages(plan, job, pixels, classes, prepared.get(plan.tile_size),
                                 quicklook=look)
        names = plan.decisions.names()
        reused = [n if not r else "reused" for n, r in zip(names, plan.reused, strict=True)]
        table = plan.class_counts()
        per_tile = [{"index": i, "decision": reused[i],
                     "onboard": None if np.isnan(plan.onboard[i]) else
                     round(float(plan.onboard[i]), 3),
                     "onboard_by_class": None if np.isnan(plan.onboard[i]) else
                     {c: round(float(v), 3) for c, v in zip(classes, table[i], strict=True)},
                     "confidence": None if np.isnan(plan.confidence[i]) else
                     round(float(plan.confidence[i]), 4)} for i in range(len(plan.grid))]
        if self.on_tiles:
            self.on_tiles(reused)
        result = {"tile_size": plan.tile_size, "tiles": len(plan.grid), "per_tile": per_tile,
                  "tiles_by_decision": {k: reused.count(k) for k in sorted(set(reused))},
                  "classes": classes,
                  "onboard_total": round(float(np.nansum(plan.onboard)), 3),
                  "onboard_by_class": {c: round(float(np.nansum(table[:, k])), 3)
                                       for k, c in enumerate(classes)},
                  "onboard_inferences": plan.inferences, "energy_j": plan.ledger.report(),
                  # the scene's whole budget (the quicklook's bytes, in "quicklook", come
                  # out of it first) and the tile bytes planned within the rest
                  "downlink_budget_bytes": int(plan.byte_budget) + look_bytes,
                  "downlink_bytes_planned": int(plan.decisions.bytes_used),
                  "quicklook": look_report,
                  "gsd_m": gsd, "gsd_source": job.gsd_source,
                  "warnings": list(job.warnings)}
        self.db.finish(job.scene_id, result, messages)
        return result

    def messages(self, plan: ScenePlan, job: SceneJob, pixels: np.ndarray,
                 classes: list[str] | None = None, prepared: PreparedTiles | None = None,
                 quicklook: tuple[bytes, int, int] | None = None
                 ) -> Iterator[link_pb2.DownlinkMessage]:
        """The scene's outbox messages, made as they are consumed (the outbox inserts each
        as it comes: a large scene's downlink is never in memory whole); a downlinked
        tile's pixels come from ``prepared``'s kept inputs where they are there (not read
        from the scene again)."""
        card = self.counter.card
        summary = scene_summary(plan)
        if quicklook:  # the scene's browse image rides with its summary
            summary.quicklook, summary.quicklook_width, summary.quicklook_height = quicklook
        gsd = job.gsd_m
        header = scene_header(plan, gsd, job.footprint, capture_time=job.capture_time,
                              onboard_model=f"{card.name}/{card.architecture}"
                                            f"@{card.sha256[:12]}",
                              ground_model=f"{card.name}/deep",
                              input_size=self.counter.input_size, policy=self.cfg.policy,
                              classes=classes or self.counter.classes,
                              gsd_estimated=job.gsd_source == "estimated",
                              bundle_version=self.bundle_version)
        # What goes down meets the rule the ground checks it by (shared.limits): a number
        # out of range fails the scene here, with the reason, not at the ground.
        limits.check_header(header)
        limits.check_summary(summary, header)
        yield from [link_pb2.DownlinkMessage(header=header),
                    link_pb2.DownlinkMessage(summary=summary)]
        sent_gsd = (gsd or 0.0) * plan.tile_size / self.counter.input_size
        for i in np.flatnonzero(plan.decisions.action == DOWNLINK):
            t = plan.grid.tile(int(i))
            q = int(plan.decisions.quality[i])
            sent = prepared.sent_pixels(int(i), self.counter.input_size) \
                if prepared is not None else \
                downlink_pixels(plan.grid.crop(pixels, int(i)), plan.tile_size,
                                self.counter.input_size)
            data = encode_tile(sent, q)
            yield from (link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
                plan.scene_id, int(i), t.row, t.col, data, q, sent_gsd_m=sent_gsd,
                onboard_count=float(plan.onboard[i]), confidence=float(plan.confidence[i])))


class Worker(threading.Thread):
    def __init__(self, processor: SceneProcessor, idle_s: float = 0.2):
        super().__init__(daemon=True, name="onboard-worker")
        self.processor, self.idle_s = processor, idle_s
        self._halt = threading.Event()
        self.busy = False

    def run(self) -> None:
        db = self.processor.db
        while not self._halt.is_set():
            job = db.claim_next()
            if job is None:
                self._halt.wait(self.idle_s)
                continue
            scene_id = job.scene_id
            self.busy = True
            try:
                self.processor.run(job)
                log.info("scene processed", extra={"scene_id": scene_id})
            except Exception as exc:  # noqa: BLE001 (a bad scene must not stop the worker)
                log.exception("scene failed", extra={"scene_id": scene_id})
                db.fail(scene_id, f"{type(exc).__name__}: {public(exc)}")
            finally:
                self.busy = False

    def stop(self) -> None:
        self._halt.set()

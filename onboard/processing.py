"""Processing accepted scenes off the request path: open, resolve, budget, plan, queue.

Each scene goes through ``shared.pipeline.scene.plan_scene`` exactly as in the offline
simulator, with the service's parts around it:

1. its pixels, in bounded memory (``onboard.scene_pixels.open_scene``);
2. its job (``onboard.scene_job``): resolved at intake for a queued scene, here for one
   handed straight in; its GSD estimated from the pixels when nobody gave one and the
   settings ask (``with_estimated_gsd``);
3. its budgets, scene-relative and capped by what the link can carry
   (``onboard.link_budgets``), the quicklook taken from them first;
4. the plan. Per tile, the plan keeps counts, confidence and a descriptor in memory; its
   uint8 thumbnail and, up to ``tile_store_bytes``, its counter input (the tile resized to
   the counter's input: also what a resized downlink sends) go to scratch files
   (``shared.pipeline.tiles.SpillStore``), so a tile is read from the scene once: counting
   it and encoding it for the downlink read the kept input back;
5. the answer (``onboard.scene_result``) and the link's messages
   (``onboard.downlink_messages``: header, summary, downlinked tiles in checksummed chunks)
   go into the outbox in the same transaction that marks the scene ``downlinking``.

The worker thread that feeds queued scenes to ``SceneProcessor.run`` is ``onboard.worker``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from onboard.contact_plan import contact_schedule
from onboard.counter import OnboardCounter
from onboard.downlink_messages import scene_messages
from onboard.link.windows import ContactSchedule
from onboard.link_budgets import LinkBudgets, Prepare
from onboard.scene_job import SceneJob, TileRule, resolve, with_estimated_gsd
from onboard.scene_pixels import open_scene
from onboard.scene_result import decision_names, scene_result
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.pipeline.dedup import RevisitCache
from shared.pipeline.energy import EnergyModel
from shared.pipeline.quicklook import Canvas
from shared.pipeline.scene import SceneBudgets, SceneCounter, plan_scene
from shared.pipeline.tiles import PreparedTiles, prepare_tiles

log = logging.getLogger("targetfuse.onboard.processing")


class SceneProcessor:
    def __init__(self, settings: OnboardSettings, db: ScenesDB, counter: OnboardCounter,
                 energy: EnergyModel | None = None, rule: TileRule | None = None, *,
                 schedule: ContactSchedule | None = None):
        """``rule``: how scenes are cut (the one the intake sized their jobs by; default:
        this counter's, with this configuration's adaptive tiling); ``schedule``: the
        contact schedule budgets are capped by (the service's, read at start; default: the
        settings', read now)."""
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
        self.schedule = schedule if schedule is not None else contact_schedule(settings)
        self.budgets = LinkBudgets(settings, self.cfg, self.rule, counter, self.energy,
                                   self.schedule,
                                   queued_bytes=lambda: db.outbox.stats()["bytes_queued"])
        self.inference_seconds = 0.0
        self.on_tiles = None  # callback(decision names), e.g. metrics
        # The uplink (onboard/bundles.py): its keeper applies a staged bundle between
        # scenes (updates.between_scenes) and sets the version in force, sent in each header.
        self.updates = None
        self.bundle_version = 0

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

    def _process(self, job: SceneJob, pixels) -> dict:
        if self.updates is not None:  # before the scene, never during it
            self.updates.between_scenes()
        job = with_estimated_gsd(job, pixels, self.counter, self.rule,
                                 self.settings.estimate_gsd)
        for w in job.warnings:
            log.warning(w, extra={"scene_id": job.scene_id})
        prepared: dict[int, PreparedTiles] = {}
        # The quicklook's canvas, filled by the pass over the tiles at the size planning
        # starts at (its blocks are those tiles), so the scene is not read again for it.
        look = self.settings.quicklook_px
        canvas = Canvas(pixels.shape[0], pixels.shape[1], look) if look else None

        def prepare(size: int) -> PreparedTiles:  # shared by the budgets and the plan
            if size not in prepared:
                prepared[size] = prepare_tiles(
                    pixels, size, self.cfg, self.counter.input_size, spill_dir=self.scratch,
                    spill_bytes=self.settings.tile_store_bytes,
                    canvas=canvas if size == job.tile_size else None)
            return prepared[size]

        try:
            return self._plan(job, pixels, prepare, prepared, canvas)
        finally:
            for prep in prepared.values():
                prep.close()

    def _plan(self, job: SceneJob, pixels, prepare: Prepare,
              prepared: dict[int, PreparedTiles], canvas: Canvas | None = None) -> dict:
        gsd, first = job.gsd_m, job.tile_size
        t0 = time.perf_counter()
        budget, energy_j, natural = self.budgets.of_scene(pixels, gsd, first, prepare)
        if canvas is not None:
            prepare(first)  # planning starts there anyway; it fills the canvas
        look, look_report = self.budgets.quicklook(
            pixels, budget, first, None if canvas is None else canvas.image)
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
        messages = scene_messages(plan, job, pixels, self.counter, self.cfg.policy,
                                  classes=classes, prepared=prepared.get(plan.tile_size),
                                  quicklook=look, bundle_version=self.bundle_version)
        if self.on_tiles:
            self.on_tiles(decision_names(plan))
        result = scene_result(plan, job, classes, quicklook_bytes=look_bytes,
                              quicklook_report=look_report)
        self.db.finish(job.scene_id, result, messages)
        return result

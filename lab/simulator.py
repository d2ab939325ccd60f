"""The offline simulator: both halves of the pipeline over annotated scenes, no network.

Per scene it runs the onboard half (``scene.plan_scene``) with the real onboard counter and
the ground half (the real ground counter on each downlinked tile, decoded from the JPEG bytes
at the chosen quality, then ``aggregation.aggregate``), the same functions the services call.
Expensive facts are computed once per scene and reused across a sweep: the onboard counts of
every tile at each tile size (``count_fn`` answers from them, so decisions are identical to
counting on demand), the prepared tiles, and each (tile, quality) ground count.

Budgets are scene-relative for experiments: the downlink budget is a fraction of the scene's
raw encoded tile bytes (every tile of the counter's natural grid as JPEG at the raw quality),
the energy budget a fraction of what counting every such tile onboard costs. Baselines
(``baselines``; their definitions in ``shared.pipeline.baselines.BASELINES``): onboard-only,
vanilla (native and resized) and random at the same budgets, each family in its strongest
fair form and the paper's; ``ground_only``: the deep counter on every natural tile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ground.counting import ground_class_counts
from shared.annotations import AnnotatedImage
from shared.pipeline.aggregation import aggregate
from shared.pipeline.baselines import BASELINES
from shared.pipeline.budgets import full_onboard_energy, raw_tile_bytes
from shared.pipeline.codec import decode_tile, downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.pipeline.dedup import RevisitCache
from shared.pipeline.energy import EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.scene import SceneBudgets, SceneCounter, ScenePlan, plan_scene
from shared.pipeline.throttling import BENT_PIPES
from shared.pipeline.tiles import LazyTiles, PreparedTiles, prepare_tiles
from shared.pipeline.tiling import TilingEntry
from shared.tile_grid import TileGrid


def check_fraction(name: str, value: float, upper: float = 10.0) -> float:
    if not (isinstance(value, int | float) and 0 <= value <= upper):
        raise ValueError(f"{name} must be a number in [0, {upper}], got {value!r}")
    return float(value)


def baseline_config(cfg: PipelineConfig, policy: str, changes: dict) -> PipelineConfig:
    """A baseline's settings at ``cfg``'s: its policy and changes, and no exploration (the
    loop's bytes are the collaborative run's cost, never a baseline's)."""
    return replace(cfg, policy=policy, **{"exploration_share": 0.0, **changes})


@dataclass
class RunResult:
    total: float
    plan: ScenePlan
    by_provenance: dict
    tiles_by_provenance: dict


class SceneSimulator:
    """One scene with its counters; ``run`` plays the pipeline under given budgets."""

    def __init__(self, image: AnnotatedImage, onboard, ground, energy: EnergyModel | None = None,
                 tiling: TilingEntry | None = None, error_model: ErrorModel | None = None,
                 *, pixels: np.ndarray | None = None, ground_only: float | None = None,
                 classes: list[str] | None = None):
        """``ground_only``: the deep counter's whole-scene total when already known;
        ``classes``: the classes counted (default every class the counters count)."""
        self.image = image
        self.pixels = image.load_pixels() if pixels is None else pixels
        self.gsd = image.meta.gsd_m
        self.onboard, self.ground = onboard, ground
        self.energy = energy or EnergyModel()
        self.tiling, self.error_model = tiling, error_model
        self.natural = onboard.tile_size_for(self.gsd)
        self.flops = float(onboard.card.flops_per_tile)
        self._onboard: dict[int, tuple] = {}
        self._ground: dict[tuple[int, int, int], float] = {}
        self._prep: dict[tuple, PreparedTiles] = {}
        self._raw: dict[int, int] = {}
        self.full_energy = full_onboard_energy(self.pixels, self.natural, self.energy,
                                               self.flops)
        self._ground_only = ground_only
        self.classes = classes
        self.channels = onboard.channels(classes) if classes else None
        self.ground_channels = ground.channels(classes) if classes and ground else None

    @property
    def tiles_natural(self) -> int:
        """Tiles of the counter's natural grid (what scene-relative budgets refer to)."""
        return len(TileGrid(self.pixels.shape[1], self.pixels.shape[0], self.natural))

    def set_energy(self, energy: EnergyModel) -> None:
        """Play later runs under another energy model (counts stay cached)."""
        self.energy = energy
        self.full_energy = full_onboard_energy(self.pixels, self.natural, energy, self.flops)

    def raw_bytes(self, quality: int) -> int:
        """The scene's raw encoded tile bytes at a JPEG quality (``raw_tile_bytes``)."""
        if quality not in self._raw:
            self._raw[quality] = raw_tile_bytes(self.pixels, self.natural, quality)
        return self._raw[quality]

    def resized(self, cfg: PipelineConfig) -> bool:
        return cfg.sends_resized

    def prepared(self, tile_size: int, cfg: PipelineConfig) -> PreparedTiles:
        key = (tile_size, cfg.dedup, cfg.k_max, cfg.seed, cfg.all_qualities, self.resized(cfg))
        if key not in self._prep:
            prep = prepare_tiles(self.pixels, tile_size, cfg, self.onboard.input_size)
            prep.contexts.verified = {}  # plans are replayed here: verify each pair once
            self._prep[key] = prep
        return self._prep[key]

    def onboard_at(self, tile_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if tile_size not in self._onboard:
            grid = TileGrid(self.pixels.shape[1], self.pixels.shape[0], tile_size)
            self._onboard[tile_size] = self.onboard.count_at(LazyTiles(grid, self.pixels),
                                                             tile_size, self.channels)
        return self._onboard[tile_size]

    def _count_fn(self, i: int, tile: np.ndarray, tile_size: int):
        counts, conf, dens = self.onboard_at(tile_size)
        return float(counts[i]), float(conf[i]), dens[i]

    def ground_count(self, plan: ScenePlan, i: int, quality: int, resized: bool) -> float:
        """The ground counter's count of tile i as received: JPEG at ``quality``, decoded."""
        key = (plan.tile_size, i, quality, resized)
        if key not in self._ground:
            tile = downlink_pixels(plan.grid.crop(self.pixels, i), plan.tile_size,
                                   self.onboard.input_size if resized else None)
            received = decode_tile(encode_tile(tile, quality))
            self._ground[key] = float(ground_class_counts(
                self.ground, received, self.gsd, self.onboard.input_size if resized else None,
                self.ground_channels).sum())
        return self._ground[key]

    @property
    def ground_only(self) -> float:
        if self._ground_only is None:
            self._ground_only = self.ground.count_tiles(self.pixels, self.gsd,
                                                        classes=self.classes).total
        return self._ground_only

    def run(self, cfg: PipelineConfig, budget_fraction: float, energy_fraction: float,
            cache: RevisitCache | None = None, correct_ground: bool = True,
            scene_id: str | None = None) -> RunResult:
        """``correct_ground``: multiply each resized downlinked tile's ground count by its
        quality's bias correction from the error model (as the ground service does);
        ``scene_id``: the id the scene is planned under (default the image's; a revisit of the
        same image is a new scene, with its own exploration draw)."""
        check_fraction("budget fraction", budget_fraction)
        check_fraction("energy fraction", energy_fraction)
        budget = budget_fraction * self.raw_bytes(cfg.raw_quality)
        plan = plan_scene(self.pixels, scene_id or self.image.image_id,
                          SceneCounter(self._count_fn, self.flops, self.natural,
                                       input_size=self.onboard.input_size),
                          SceneBudgets(budget, energy_fraction * self.full_energy, self.energy),
                          cfg, footprint=self.image.meta.footprint, tiling=self.tiling,
                          cache=cache, error_model=self.error_model,
                          prepare=lambda s: self.prepared(s, cfg))
        d = plan.decisions
        down = np.flatnonzero(d.action == 3)
        # The ground corrects each received count for its quality's known bias.
        correct = correct_ground and self.error_model is not None and self.resized(cfg)
        ground = {int(i): self.ground_count(plan, int(i), int(d.quality[i]), self.resized(cfg))
                  * (self.error_model.scale(int(d.quality[i])) if correct else 1.0)
                  for i in down}
        # A bent pipe clusters nothing onboard: it extrapolates from the whole scene.
        contexts = None if cfg.policy in BENT_PIPES else plan.contexts
        agg = aggregate(d.action, plan.onboard, plan.reused, ground, contexts,
                        cfg.discarded, cfg.uncounted)
        return RunResult(agg.total, plan, agg.by_provenance, agg.tiles_by_provenance)

    def baselines(self, cfg: PipelineConfig, budget_fraction: float, energy_fraction: float
                  ) -> dict[str, RunResult]:
        """Every baseline of ``BASELINES`` at the same budgets as ``cfg`` (keys with
        underscores: ``onboard_only``, ``vanilla_resized``, ...)."""
        out = {}
        for name, (policy, changes) in BASELINES.items():
            base = baseline_config(cfg, policy, changes)
            out[name.replace("-", "_")] = self.run(
                base, 0.0 if policy == "onboard-only" else budget_fraction, energy_fraction)
        return out

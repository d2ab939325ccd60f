"""The onboard half of the pipeline for one scene: tiles -> counts -> decisions.

``plan_scene`` is what the onboard service runs per scene and what the simulator runs
offline: it takes the capture energy, reserves the energy the downlink budget will need,
picks the tile size (``tiling``: calibrated, or larger when energy cannot count every tile),
orders tiles by deduplication context (``dedup``: representatives first), and for each tile
either reuses a verified near-duplicate's count (revisit cache, then its context), counts it
with the onboard counter while the energy lasts, or leaves it uncounted. Throttling
(``throttling``) then decides what goes down, less the share ``exploration`` draws at random
among the tiles it accepted. Counting goes through ``count_fn``, so the
simulator can answer from precomputed counts with exactly the same decisions.

Counts are of the classes the scene asked for: ``count_fn`` may add each class's count to
its answer (``class_onboard``; a single column when it does not). A tile reused from a
near-duplicate copies its class counts; one reused from the revisit cache (which keeps the
earlier capture's summed density only) splits its count in the proportions of this scene's
counted tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.annotations import Footprint
from shared.pipeline import dedup, exploration
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import UNCOUNTED, Candidates, Decisions
from shared.pipeline.energy import EnergyLedger, EnergyModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.selection import ACCEPT, DISCARD
from shared.pipeline.throttling import BENT_PIPES, PAPER_POLICIES, throttle
from shared.pipeline.tiles import PreparedTiles, prepare_tiles
from shared.pipeline.tiling import TilingEntry, affordable_size, first_tile_size
from shared.tile_grid import TileGrid

# count_fn(tile index, tile pixels, tile size) -> (count, confidence, density map), optionally
# followed by the count of each requested class
CountFn = Callable[[int, np.ndarray, int], tuple]


@dataclass
class ScenePlan:
    scene_id: str
    grid: TileGrid
    onboard: np.ndarray  # count per tile (own or reused), NaN = uncounted
    confidence: np.ndarray
    reused: np.ndarray  # bool
    reused_from: list[str | None]  # "tile:<j>" or "scene:<id>"
    contexts: np.ndarray
    sizes: dict[int, np.ndarray]
    decisions: Decisions
    inferences: int
    byte_budget: int
    ledger: EnergyLedger
    # counted tiles' density maps at thumbnail resolution, kept only for the revisit cache
    densities: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    class_onboard: np.ndarray | None = None  # (n, C) per requested class, NaN = uncounted

    def class_counts(self) -> np.ndarray:
        return self.class_onboard if self.class_onboard is not None else self.onboard[:, None]

    @property
    def tile_size(self) -> int:
        return self.grid.tile_size


@dataclass(frozen=True)
class SceneCounter:
    """How a plan counts tiles: the counter's answer (``count_fn``), its cost in FLOPs per
    tile, the natural tile size at the scene's GSD, the counter's input size (tiles are
    prepared at it; None: at their own size) and how many per-class counts ``count_fn``
    gives (the width of the class table even when no tile of this scene is counted here:
    every one reused from a revisit; None: one)."""

    count_fn: CountFn
    flops_per_tile: float
    natural_tile: int
    input_size: int | None = None
    n_classes: int | None = None


@dataclass(frozen=True)
class SceneBudgets:
    """What a scene may spend: downlink bytes and energy (J), priced by ``energy``."""

    byte_budget: float
    energy_j: float
    energy: EnergyModel | None = None


def plan_scene(pixels: np.ndarray, scene_id: str, counter: SceneCounter,
               budgets: SceneBudgets, cfg: PipelineConfig, *,
               footprint: Footprint | None = None, tiling: TilingEntry | None = None,
               cache: dedup.RevisitCache | None = None, error_model: ErrorModel | None = None,
               prepare: Callable[[int], PreparedTiles] | None = None) -> ScenePlan:
    """``tiling``: the calibrated entry at the scene's GSD; ``cache``: the revisit cache;
    ``prepare(tile_size)`` may supply the prepared tiles (the simulator memoises them)."""
    count_fn, flops_per_tile, natural_tile = \
        counter.count_fn, counter.flops_per_tile, counter.natural_tile
    input_size, n_classes = counter.input_size, counter.n_classes
    byte_budget, energy_j, energy = budgets.byte_budget, budgets.energy_j, budgets.energy
    energy = energy or EnergyModel()
    h, w = pixels.shape[:2]
    ledger = EnergyLedger(energy_j)
    ledger.spend("capture", min(energy.capture(w, h), ledger.remaining))
    if prepare is None:
        prepared: dict[int, PreparedTiles] = {}

        def prepare(s: int) -> PreparedTiles:  # each size once: it encodes every tile
            if s not in prepared:
                prepared[s] = prepare_tiles(pixels, s, cfg, input_size)
            return prepared[s]
    tile_size = first_tile_size(natural_tile, tiling, cfg.adaptive_tiling)
    cheapest = min(cfg.qualities) if cfg.policy == "value" else cfg.raw_quality
    first_sizes = prepare(tile_size).sizes[cheapest]
    if not len(first_sizes) or byte_budget < int(first_sizes.min()):
        # No tile fits the window: keeping energy for a downlink that cannot happen would
        # only leave tiles uncounted.
        byte_budget = 0
    # The downlink's energy is set aside first; what is left pays for counting.
    reserve = min(energy.downlink(byte_budget), ledger.remaining)
    byte_budget = min(int(byte_budget), energy.bytes_for(reserve))
    per_inference = energy.compute(flops_per_tile)
    count_energy = ledger.remaining - reserve
    affordable = int(count_energy // per_inference) if per_inference > 0 else 2**31
    if cfg.adaptive_tiling:
        # Tiles the energy cannot count may still go down whole: those the byte budget can
        # carry (estimated from this size's encoded tiles) count as covered too.
        sendable = int(byte_budget // max(float(np.median(first_sizes)), 1.0)) \
            if cfg.policy not in ("onboard-only", *BENT_PIPES) and len(first_sizes) else 0
        tile_size = affordable_size(tiling, tile_size, w, h, affordable + sendable)
    prep = prepare(tile_size)
    grid, sizes, thumbs, plan = prep.grid, prep.sizes, prep.thumbs, prep.contexts
    n = len(grid)
    onboard = np.full(n, np.nan)
    conf = np.full(n, np.nan)
    reused = np.zeros(n, bool)
    reused_from: list[str | None] = [None] * n
    # Kept per tile: counts, confidences, descriptors and uint8 thumbnails (prepared), and,
    # only when the revisit cache will keep this scene, each counted tile's density at
    # thumbnail resolution (the full map is dropped as soon as the tile is counted).
    densities: dict[int, np.ndarray] = {}
    px = tile_size / dedup.THUMB
    remember = cfg.dedup and cache is not None and dedup.RevisitCache.usable(footprint) \
        and cache.fits(MOSAIC_BYTES_PER_PX * math.prod(_mosaic_shape(grid, px)))
    rows: dict[int, np.ndarray] = {}  # per-class counts of counted and near-duplicate tiles
    counted: list[int] = []
    by_context: dict[int, list[int]] = {}  # counted tiles of each context, in order

    def count(i: int) -> None:
        ledger.spend("compute", per_inference)
        answer = count_fn(i, *prep.counter_tile(i))  # kept input: no second read
        onboard[i], conf[i] = answer[:2]
        if remember:
            t = grid.tile(i)
            densities[i] = dedup.mosaic_density(answer[2], (t.height, t.width), tile_size,
                                                _slot(grid, t, thumbs[i], px).shape)
        rows[i] = np.asarray(answer[3], float) if len(answer) > 3 else np.array([onboard[i]])
        counted.append(i)
        by_context.setdefault(int(plan.contexts[i]), []).append(i)

    for i in plan.order:
        i = int(i)
        if cfg.dedup:
            tile = grid.tile(i)
            hit = cache.lookup(footprint, tile.x0, tile.y0, thumbs[i], px) if cache else None
            if hit is not None:
                onboard[i], conf[i] = hit[0], hit[2]
                reused[i], reused_from[i] = True, f"scene:{hit[1]}"
                continue
            j = dedup.reuse_source(i, plan, by_context.get(int(plan.contexts[i]), []),
                                   thumbs)
            if j is not None:
                onboard[i], conf[i] = onboard[j], conf[j]
                reused[i], reused_from[i] = True, f"tile:{j}"
                rows[i] = rows[j]
                continue
        if cfg.policy in BENT_PIPES or not ledger.can_afford(per_inference + reserve):
            continue  # uncounted: energy spent (the bent pipe counts nothing onboard)
        count(i)
    if remember:
        _remember(cache, scene_id, footprint, grid, thumbs, densities, px, confidence=conf,
                  class_shares=_shares(np.array([rows[i] for i in counted])) if counted
                  else None)
    # Reused tiles may still go down: deduplication saves inference energy, and a reused
    # count is no surer than the count it copies.
    candidates = Candidates(onboard, conf, sizes)
    params = {"conf_p": cfg.conf_p, "conf_q": cfg.conf_q, "seed": cfg.seed,
              "error_model": error_model, "qualities": list(cfg.qualities)}

    def run_throttle(budget: int, eligible: np.ndarray | None = None) -> Decisions:
        return throttle(cfg.policy, Candidates(onboard, conf, sizes, eligible), budget,
                        cfg.raw_quality, **params)

    decisions = run_throttle(byte_budget)
    if cfg.exploration_share > 0:
        # A share of the bytes for tiles drawn at random among those accepted onboard.
        decisions = exploration.explore(
            candidates, decisions, byte_budget, cfg.exploration_share,
            max(cfg.all_qualities), exploration.scene_rng(cfg.seed, scene_id), run_throttle,
            reused=reused)
    if cfg.policy not in BENT_PIPES:
        # Energy set aside for bytes the policy chose not to send goes back to counting:
        # a tile left uncounted for a downlink that did not happen is counted after all.
        sending = energy.downlink(decisions.bytes_used) + energy.aggregate(n)
        for i in plan.order:
            i = int(i)
            if not np.isnan(onboard[i]) or decisions.action[i] != UNCOUNTED:
                continue
            if not ledger.can_afford(per_inference + sending):
                break
            count(i)
            # Not sent, so accepted, unless a paper policy's band discards it.
            decisions.action[i] = DISCARD if cfg.policy in PAPER_POLICIES and \
                conf[i] < cfg.conf_p else ACCEPT
    revisited = {h.split(":", 1)[1] for h in reused_from if h and h.startswith("scene:")}
    width = n_classes or (len(next(iter(rows.values()))) if rows else 1)
    table = _class_table(onboard, rows, counted, width,
                         [cache.class_shares(s) for s in revisited] if cache else [])
    ledger.spend("aggregate", min(energy.aggregate(n), ledger.remaining))
    ledger.spend("downlink", min(energy.downlink(decisions.bytes_used), ledger.remaining))
    return ScenePlan(scene_id, grid, onboard, conf, reused, reused_from, plan.contexts, sizes,
                     decisions, len(counted), byte_budget, ledger, densities, table)


def _shares(rows: np.ndarray) -> np.ndarray | None:
    """Each class's share of these per-class count rows (None when they sum to nothing)."""
    summed = np.nansum(np.asarray(rows, float).reshape(len(rows), -1), axis=0)
    return summed / summed.sum() if summed.size and summed.sum() > 0 else None


def _class_table(onboard: np.ndarray, rows: dict[int, np.ndarray], counted: list[int],
                 width: int, earlier: list[np.ndarray | None] = ()) -> np.ndarray:
    """(n, C) class counts: known rows, NaN for uncounted tiles, and tiles reused from the
    revisit cache split in the proportions of the scene's counted tiles (none counted: of
    the earlier captures they were reused from; else evenly). ``width`` classes always, so
    a capture whose every tile is a revisit still has one column per class."""
    table = np.full((len(onboard), width), np.nan)
    for i, row in rows.items():
        table[i] = row
    shares = _shares(np.array([rows[i] for i in counted])) if counted else None
    if shares is None:
        known = [s for s in earlier if s is not None and len(s) == width]
        shares = _shares(np.array(known)) if known else None
    if shares is None or len(shares) != width:
        shares = np.full(width, 1.0 / width)
    for i in np.flatnonzero(~np.isnan(onboard)):
        if int(i) not in rows:
            table[i] = onboard[i] * shares
    return table


# A revisit mosaic's bytes per pixel: uint8 grey, float32 density, bool valid, float32
# confidence.
MOSAIC_BYTES_PER_PX = 1 + 4 + 1 + 4


def _mosaic_shape(grid: TileGrid, px: float) -> tuple[int, int]:
    return math.ceil(grid.height / px), math.ceil(grid.width / px)


def _slot(grid: TileGrid, t, thumb: np.ndarray, px: float) -> np.ndarray:
    """The part of a tile's thumbnail that lies inside the scene's mosaic (rounding may push
    the last row or column's past its edge)."""
    mh, mw = _mosaic_shape(grid, px)
    y, x = round(t.y0 / px), round(t.x0 / px)
    return thumb[: mh - y, : mw - x]


def _remember(cache: dedup.RevisitCache, scene_id: str, footprint: Footprint, grid: TileGrid,
              thumbs: list[np.ndarray], densities: dict[int, np.ndarray], px: float, *,
              confidence: np.ndarray | None = None,
              class_shares: np.ndarray | None = None) -> None:
    """Put this scene's thumbnails and counted tiles' densities (already at thumbnail
    resolution: ``mosaic_density``) into the revisit cache."""
    mh, mw = _mosaic_shape(grid, px)
    thumb = np.zeros((mh, mw), np.uint8)  # the thumbnails' own whole grey levels
    dens = np.zeros((mh, mw), np.float32)
    valid = np.zeros((mh, mw), bool)
    conf = np.full((mh, mw), np.nan, np.float32)
    for t in grid:
        th = _slot(grid, t, thumbs[t.index], px)
        y, x = round(t.y0 / px), round(t.x0 / px)
        thumb[y:y + th.shape[0], x:x + th.shape[1]] = th
        if t.index in densities:
            dens[y:y + th.shape[0], x:x + th.shape[1]] = densities[t.index]
            valid[y:y + th.shape[0], x:x + th.shape[1]] = True
            if confidence is not None:
                conf[y:y + th.shape[0], x:x + th.shape[1]] = confidence[t.index]
    cache.add(scene_id, footprint, thumb, dens, valid, px, confidence=conf,
              class_shares=class_shares)

"""The onboard half of the pipeline for one scene: tiles -> counts -> decisions.

``plan_scene`` is what the onboard service runs per scene and what the simulator runs
offline: it takes the capture energy, reserves the energy the downlink budget will need,
picks the tile size (``tiling``: calibrated, or larger when energy cannot count every tile),
orders tiles by deduplication context (``dedup``: representatives first), and for each tile
either reuses a verified near-duplicate's count (revisit cache, then its context), counts it
with the onboard counter while the energy lasts, or leaves it uncounted. Throttling
(``throttling``) then decides what goes down. Counting goes through ``count_fn``, so the
simulator can answer from precomputed counts with exactly the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from shared.annotations import Footprint
from shared.pipeline import dedup
from shared.pipeline.aggregation import check_treatments
from shared.pipeline.energy import EnergyLedger, EnergyModel
from shared.pipeline.selection import check_thresholds
from shared.pipeline.throttling import POLICIES, Candidates, Decisions, ErrorModel, throttle
from shared.pipeline.tiling import TilingEntry, affordable_size, tiles_for
from shared.tile_grid import TileGrid

# count_fn(tile index, tile pixels, tile size) -> (count, confidence, density map)
CountFn = Callable[[int, np.ndarray, int], tuple[float, float, np.ndarray]]


@dataclass(frozen=True)
class PipelineConfig:
    policy: str = "value"
    conf_p: float = 0.0
    conf_q: float = 0.9
    raw_quality: int = 90  # the JPEG quality tiles are "raw" at (vanilla, budgets, paper policies)
    # What the value policy may choose from. Not 30: on the validation split q30 tiles cost
    # 0.35-0.43 objects of CMAE per scene more than q50-90 (a loss the error model, fit on
    # training tiles, does not see).
    qualities: tuple[int, ...] = (50, 75, 90)
    adaptive_tiling: bool = True
    dedup: bool = True
    k_max: int = 8
    # Downlinked tiles go down as the counter sees them (resized to its input, as the paper
    # tiles onboard): the ground counter needs no more pixels than that. False: native
    # resolution. Vanilla always sends native tiles (a bent pipe knows no counter).
    downlink_resized: bool = True
    discarded: str = "onboard"
    uncounted: str = "context"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; one of {sorted(POLICIES)}")
        check_thresholds(self.conf_p, self.conf_q)
        for q in (self.raw_quality, *self.qualities):
            if not (isinstance(q, int) and 1 <= q <= 100):
                raise ValueError(f"JPEG qualities must be integers in [1, 100], got {q!r}")
        if self.k_max < 1:
            raise ValueError(f"k_max must be >= 1, got {self.k_max}")
        check_treatments(self.discarded, self.uncounted)

    @property
    def all_qualities(self) -> tuple[int, ...]:
        return tuple(sorted({self.raw_quality, *self.qualities}))


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
    densities: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def tile_size(self) -> int:
        return self.grid.tile_size


def downlink_pixels(tile: np.ndarray, tile_size: int, input_size: int | None) -> np.ndarray:
    """The pixels that go down for a tile: resized by ``input_size / tile_size`` (what the
    counters' input holds, partial tiles proportionally) or, without an input size, native."""
    if not input_size or input_size >= tile_size:
        return tile
    f = input_size / tile_size
    h, w = tile.shape[:2]
    return cv2.resize(tile, (max(1, round(w * f)), max(1, round(h * f))),
                      interpolation=cv2.INTER_AREA)


def encode_tile(tile: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(tile), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_tile(data: bytes) -> np.ndarray:
    """A received tile's bytes -> RGB pixels; ValueError when they do not decode."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("tile bytes are not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def raw_tile_bytes(pixels, natural_tile: int, raw_quality: int) -> int:
    """What a scene-relative downlink budget is a fraction of: every tile of the counter's
    natural grid encoded as JPEG at the raw quality (what the bent pipe would send)."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], natural_tile)
    return sum(len(encode_tile(t, raw_quality)) for t in LazyTiles(grid, pixels))


def full_onboard_energy(pixels, natural_tile: int, energy: EnergyModel,
                        flops_per_tile: float) -> float:
    """What a scene-relative energy budget is a fraction of: counting every natural tile."""
    h, w = pixels.shape[:2]
    return energy.full_onboard(w, h, tiles_for(w, h, natural_tile), flops_per_tile)


class LazyTiles(Sequence):
    """A scene's tiles, cropped from its pixels when asked for.

    ``pixels`` is anything with ``shape`` and 2-D slicing that returns an RGB array: a numpy
    array, or a reader that fetches only the window asked for (``onboard.processing``'s
    GeoTIFF source), so a large scene never has to be in memory whole."""

    def __init__(self, grid: TileGrid, pixels):
        self.grid, self.pixels = grid, pixels

    def __len__(self) -> int:
        return len(self.grid)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.grid.crop(self.pixels, int(i))


@dataclass
class PreparedTiles:
    """What a scene's tiles are before anything is counted (depends only on the pixels, the
    tile size and the deduplication settings, so the simulator reuses it across sweeps)."""

    grid: TileGrid
    tiles: Sequence[np.ndarray]
    sizes: dict[int, np.ndarray]
    thumbs: list[np.ndarray]
    contexts: dedup.ContextPlan


def prepare_tiles(pixels, tile_size: int, cfg: PipelineConfig,
                  input_size: int | None = None) -> PreparedTiles:
    """One pass over the tiles (each read once): encoded sizes of what would go down at each
    quality, thumbnails and descriptors. ``input_size``: the counter's, for resized
    downlinks (``cfg.downlink_resized``)."""
    grid = TileGrid(pixels.shape[1], pixels.shape[0], tile_size)
    n = len(grid)
    tiles = LazyTiles(grid, pixels)
    resize = input_size if cfg.downlink_resized and cfg.policy != "vanilla" else None
    sizes = {q: np.zeros(n, np.int64) for q in cfg.all_qualities}
    thumbs, descriptors = [], []
    for i in range(n):
        tile = tiles[i]
        sent = downlink_pixels(tile, tile_size, resize)
        for q in cfg.all_qualities:
            sizes[q][i] = len(encode_tile(sent, q))
        if cfg.dedup:
            thumbs.append(dedup.thumbnail(tile, tile_size))
            descriptors.append(dedup.descriptor(tile))
    if cfg.dedup and n:
        plan = dedup.plan_contexts(np.stack(descriptors), cfg.k_max, cfg.seed)
    else:
        plan = dedup.ContextPlan(np.zeros(n, np.int64), np.arange(n), 1)
    return PreparedTiles(grid, tiles, sizes, thumbs, plan)


def plan_scene(pixels: np.ndarray, scene_id: str, count_fn: CountFn, flops_per_tile: float,
               natural_tile: int, cfg: PipelineConfig, byte_budget: float, energy_j: float,
               energy: EnergyModel | None = None, footprint: Footprint | None = None,
               tiling: TilingEntry | None = None, cache: dedup.RevisitCache | None = None,
               error_model: ErrorModel | None = None,
               prepare: Callable[[int], PreparedTiles] | None = None,
               input_size: int | None = None) -> ScenePlan:
    """``prepare(tile_size)`` may supply the prepared tiles (the simulator memoises them)."""
    energy = energy or EnergyModel()
    h, w = pixels.shape[:2]
    ledger = EnergyLedger(energy_j)
    ledger.spend("capture", min(energy.capture(w, h), ledger.remaining))
    # The downlink's energy is set aside first; what is left pays for counting.
    reserve = min(energy.downlink(byte_budget), ledger.remaining)
    byte_budget = min(int(byte_budget), energy.bytes_for(reserve))
    per_inference = energy.compute(flops_per_tile)
    count_energy = ledger.remaining - reserve
    affordable = int(count_energy // per_inference) if per_inference > 0 else 2**31
    if prepare is None:
        def prepare(s: int) -> PreparedTiles:
            return prepare_tiles(pixels, s, cfg, input_size)
    tile_size = natural_tile
    if cfg.adaptive_tiling:
        tile_size = tiling.tile_size if tiling else natural_tile
        # Tiles the energy cannot count may still go down whole: those the byte budget can
        # carry (estimated from this size's encoded tiles) count as covered too.
        cheapest = min(cfg.qualities) if cfg.policy == "value" else cfg.raw_quality
        sizes = prepare(tile_size).sizes[cheapest]
        sendable = int(byte_budget // max(float(np.median(sizes)), 1.0)) \
            if cfg.policy not in ("onboard-only", "vanilla") and len(sizes) else 0
        tile_size = affordable_size(tiling, tile_size, w, h, affordable + sendable)
    prep = prepare(tile_size)
    grid, tiles, sizes, thumbs, plan = (prep.grid, prep.tiles, prep.sizes, prep.thumbs,
                                        prep.contexts)
    n = len(grid)
    onboard = np.full(n, np.nan)
    conf = np.full(n, np.nan)
    reused = np.zeros(n, bool)
    reused_from: list[str | None] = [None] * n
    densities: dict[int, np.ndarray] = {}
    counted: list[int] = []
    px = tile_size / dedup.THUMB
    for i in plan.order:
        i = int(i)
        if cfg.dedup:
            tile = grid.tile(i)
            hit = cache.lookup(footprint, tile.x0, tile.y0, thumbs[i], px) if cache else None
            if hit is not None:
                onboard[i], conf[i] = hit[0], hit[2]
                reused[i], reused_from[i] = True, f"scene:{hit[1]}"
                continue
            j = dedup.reuse_source(i, plan, counted, thumbs)
            if j is not None:
                onboard[i], conf[i] = onboard[j], conf[j]
                reused[i], reused_from[i] = True, f"tile:{j}"
                continue
        if cfg.policy == "vanilla" or not ledger.can_afford(per_inference + reserve):
            continue  # uncounted: energy spent (the bent pipe counts nothing onboard)
        ledger.spend("compute", per_inference)
        onboard[i], conf[i], densities[i] = count_fn(i, tiles[i], tile_size)
        counted.append(i)
    if cfg.dedup and cache is not None and footprint is not None:
        _remember(cache, scene_id, footprint, grid, thumbs, densities, px, conf)
    # Reused tiles may still go down: deduplication saves inference energy, and a reused
    # count is no surer than the count it copies.
    candidates = Candidates(onboard, conf, sizes)
    params = {"conf_p": cfg.conf_p, "conf_q": cfg.conf_q, "seed": cfg.seed,
              "error_model": error_model, "qualities": list(cfg.qualities)}
    decisions = throttle(cfg.policy, candidates, byte_budget, cfg.raw_quality, **params)
    ledger.spend("aggregate", min(energy.aggregate(n), ledger.remaining))
    ledger.spend("downlink", min(energy.downlink(decisions.bytes_used), ledger.remaining))
    return ScenePlan(scene_id, grid, onboard, conf, reused, reused_from, plan.contexts, sizes,
                     decisions, len(counted), byte_budget, ledger, densities)


def _remember(cache: dedup.RevisitCache, scene_id: str, footprint: Footprint, grid: TileGrid,
              thumbs: list[np.ndarray], densities: dict[int, np.ndarray], px: float,
              confidence: np.ndarray | None = None) -> None:
    """Put this scene's thumbnails and counted tiles' densities into the revisit cache."""
    mh, mw = math.ceil(grid.height / px), math.ceil(grid.width / px)
    thumb = np.zeros((mh, mw), np.float32)
    dens = np.zeros((mh, mw), np.float32)
    valid = np.zeros((mh, mw), bool)
    conf = np.full((mh, mw), np.nan, np.float32)
    for t in grid:
        th = thumbs[t.index]
        y, x = round(t.y0 / px), round(t.x0 / px)
        th = th[: mh - y, : mw - x]
        thumb[y:y + th.shape[0], x:x + th.shape[1]] = th
        if t.index in densities:
            d = dedup.mosaic_density(densities[t.index], (t.height, t.width), grid.tile_size,
                                     th.shape)
            dens[y:y + th.shape[0], x:x + th.shape[1]] = d
            valid[y:y + th.shape[0], x:x + th.shape[1]] = True
            if confidence is not None:
                conf[y:y + th.shape[0], x:x + th.shape[1]] = confidence[t.index]
    cache.add(scene_id, footprint, thumb, dens, valid, px, conf)

"""Adaptive tiling (TargetFuse Alg. 1): the tile size for a (counter, GSD) pair.

A scene is cut into square tiles of ``s`` source pixels, each resized to the counter's input.
Small tiles magnify objects past what the counter learnt and cost more inferences per scene;
large ones shrink objects away but cost fewer. The calibration minimises, on a validation set,

    J(s) = relative CMAE(s) + lam * T(s) / T(s_ref)

where T(s) is the time per scene (inferences per scene x the constant time per inference,
since every tile is resized to the same input) and s_ref the counter's natural tile size at
that GSD: with the default ``lam = 0.02``, halving the time per scene is worth one point of
relative CMAE. The search is Alg. 1: split [s_min, s_max] in three, evaluate the two inner
points, keep the two thirds on the better side, repeat until the interval is narrower than
``threshold``, answer its midpoint. Evaluations are memoised (rounded to whole pixels).
``exhaustive`` evaluates a regular grid, for comparison.

The answer is stored per (counter name, GSD) in ``models/<name>/tiling.json`` with every
evaluated point (``targetfuse calibrate`` stores the best size it measured, the search's
answer or a point of the optional exhaustive sweep, and records both), so the run time can
also trade accuracy for energy: ``affordable_size`` picks the measured size with the least
predicted error when the energy budget cannot count every tile at the calibrated size
(uncounted area adds its share of the scene to the error).

Edges: the grid (``shared.tile_grid``) makes partial tiles of the last row and column, so
every pixel is in exactly one tile and nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_LAMBDA = 0.02


def objective(relative_cmae: float, tiles: int, tiles_ref: int,
              lam: float = DEFAULT_LAMBDA) -> float:
    return relative_cmae + lam * tiles / max(tiles_ref, 1)


@dataclass
class SearchResult:
    tile_size: int
    evaluations: dict[int, float]  # tile size -> objective, in the order evaluated
    iterations: int


def _memo(f: Callable[[int], float], seen: dict[int, float]) -> Callable[[float], float]:
    def g(s: float) -> float:
        key = int(round(s))
        if key not in seen:
            seen[key] = float(f(key))
        return seen[key]
    return g


def ternary_search(f: Callable[[int], float], s_min: int, s_max: int, threshold: int,
                   evaluate_answer: bool = True) -> SearchResult:
    """Alg. 1 over [s_min, s_max] (minimising ``f``)."""
    if not (0 < s_min < s_max):
        raise ValueError(f"need 0 < s_min < s_max, got {s_min}, {s_max}")
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    seen: dict[int, float] = {}
    g = _memo(f, seen)
    lo, hi, it = float(s_min), float(s_max), 0
    while hi - lo > threshold:
        left, right = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if g(left) <= g(right):
            hi = right  # the optimum is in [lo, right]
        else:
            lo = left  # the optimum is in [left, hi]
        it += 1
    answer = int(round((lo + hi) / 2))
    if evaluate_answer:
        g(answer)
    return SearchResult(answer, seen, it)


def exhaustive(f: Callable[[int], float], sizes: list[int]) -> SearchResult:
    seen = {int(s): float(f(int(s))) for s in sizes}
    return SearchResult(min(seen, key=seen.get), seen, len(sizes))


@dataclass
class TilingEntry:
    gsd_m: float
    tile_size: int
    objective: float
    lam: float
    points: dict[str, dict] = field(default_factory=dict)  # str(size) -> measurements
    method: str = "ternary"


@dataclass
class TilingTable:
    counter: str
    entries: list[TilingEntry] = field(default_factory=list)

    def put(self, entry: TilingEntry) -> None:
        self.entries = [e for e in self.entries if not math.isclose(e.gsd_m, entry.gsd_m)]
        self.entries.append(entry)
        self.entries.sort(key=lambda e: e.gsd_m)

    def lookup(self, gsd_m: float | None, rel_tol: float = 0.05) -> TilingEntry | None:
        """The entry calibrated at this GSD (within 5 %), if any."""
        if gsd_m is None:
            return None
        for e in self.entries:
            if math.isclose(e.gsd_m, gsd_m, rel_tol=rel_tol):
                return e
        return None

    def save(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> TilingTable:
        raw = json.loads(Path(path).read_text())
        return cls(raw["counter"], [TilingEntry(**e) for e in raw.get("entries", [])])


def first_tile_size(natural: int, entry: TilingEntry | None, adaptive: bool) -> int:
    """The tile size a scene is first cut at: the calibrated one for its GSD when adaptive
    tiling is on and the table has one, else the natural size. The one rule the intake's tile
    cap, the onboard worker and the planner all cut by (the planner may then only make tiles
    larger, ``affordable_size``, so a scene under the cap stays under it)."""
    return entry.tile_size if adaptive and entry is not None else natural


def tiles_for(width: int, height: int, tile_size: int) -> int:
    return math.ceil(width / tile_size) * math.ceil(height / tile_size)


def affordable_size(entry: TilingEntry | None, default: int, width: int, height: int,
                    affordable_tiles: int) -> int:
    """The tile size to use when only ``affordable_tiles`` inferences can be paid for.

    Among the calibrated size and every larger measured one, the least predicted relative
    error: the measured relative CMAE plus the share of the scene left uncounted."""
    base = entry.tile_size if entry else default
    if tiles_for(width, height, base) <= affordable_tiles or entry is None:
        return base
    best, best_err = base, math.inf
    for key, point in entry.points.items():
        s = int(key)
        if s < base or "relative_cmae" not in point:
            continue
        n = tiles_for(width, height, s)
        err = point["relative_cmae"] + max(0.0, 1.0 - affordable_tiles / n)
        if err < best_err:
            best, best_err = s, err
    return best

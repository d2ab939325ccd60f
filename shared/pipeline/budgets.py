"""What scene-relative budgets are fractions of.

Experiments give the downlink budget as a fraction of the scene's raw tile bytes (every tile of
the counter's natural grid as JPEG at the raw quality: what a bent pipe would send) and the
onboard energy as a fraction of what counting every such tile costs.
"""

from __future__ import annotations

from shared.pipeline.codec import encode_tile
from shared.pipeline.energy import EnergyModel
from shared.pipeline.tiles import LazyTiles
from shared.pipeline.tiling import tiles_for
from shared.tile_grid import TileGrid


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

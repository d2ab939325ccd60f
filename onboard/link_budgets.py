"""A scene's budgets on the service: scene-relative as in the simulator, capped by the link.

The energy budget is ``energy_fraction`` of what counting every tile of the scene at its
natural size costs. The downlink budget is ``budget_fraction`` of the scene's raw tile bytes
(every natural-size tile as JPEG at the raw quality), and, unless the link is always open,
no more than what the current or next contact window, and those opening within
``plan_horizon_s``, can still carry beyond what is queued already (at each window's own rate
when a contact plan gives one): the throttle plans with bytes the link can deliver.

The quicklook, when on and within its share, is the budget's first spend: its bytes come out
of the downlink budget before any tile is chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from onboard.counter import OnboardCounter
from onboard.link.windows import ContactSchedule
from onboard.scene_job import TileRule
from onboard.settings import OnboardSettings
from shared.pipeline.budgets import full_onboard_energy, raw_tile_bytes
from shared.pipeline.config import PipelineConfig
from shared.pipeline.energy import EnergyModel
from shared.pipeline.quicklook import fitted
from shared.pipeline.tiles import PreparedTiles

Prepare = Callable[[int], PreparedTiles]  # a scene's memo of prepared tiles, by tile size


@dataclass
class LinkBudgets:
    """The budgets of the scenes one processor plans: its settings and configuration, the
    rule scenes are cut by, its counter and energy model, the contact schedule, and what the
    outbox holds (``queued_bytes``, read per scene)."""

    settings: OnboardSettings
    cfg: PipelineConfig
    rule: TileRule
    counter: OnboardCounter
    energy: EnergyModel
    schedule: ContactSchedule
    queued_bytes: Callable[[], int]

    def raw_bytes(self, pixels, natural: int, first: int, prepare: Prepare) -> int:
        """``raw_tile_bytes`` of the scene; from the plan's own prepared tiles when the plan
        starts at the natural size and sends them unresized (the same JPEGs at the same
        quality): a whole pass over the scene (reading and encoding every tile) saved."""
        resized = self.cfg.sends_resized and self.counter.input_size < natural
        if first == natural and not resized:
            return int(prepare(natural).sizes[self.cfg.raw_quality].sum())
        return raw_tile_bytes(pixels, natural, self.cfg.raw_quality)

    def of_scene(self, pixels: np.ndarray, gsd: float | None, first: int | None = None,
                 prepare: Prepare | None = None) -> tuple[float, float, int]:
        """Byte budget, energy budget (J) and natural tile size for a scene (``first``: the
        tile size planning starts at; ``prepare``: its memo of prepared tiles)."""
        natural = self.rule.natural(gsd)
        raw = raw_tile_bytes(pixels, natural, self.cfg.raw_quality) if prepare is None \
            else self.raw_bytes(pixels, natural, first or natural, prepare)
        full = full_onboard_energy(pixels, natural, self.energy,
                                   self.counter.card.flops_per_tile)
        st = self.settings
        budget = st.budget_fraction * raw
        window_at = self.schedule.next_open(time.time())
        if not self.schedule.unlimited:
            # The throttle plans with the bytes the current (or next) window, and those
            # opening within the horizon, can carry (at each window's own rate when a
            # contact plan gives one).
            left = 0.0 if window_at is None else self.schedule.bytes_within(
                window_at, st.plan_horizon_s, st.link_rate_bytes_s)
            left -= self.queued_bytes()
            budget = max(0.0, min(budget, left))
        return budget, st.energy_fraction * full, natural

    def quicklook(self, pixels, budget: float, block: int, canvas: np.ndarray | None = None
                  ) -> tuple[tuple[bytes, int, int] | None, dict]:
        """The scene's browse image when it is on and fits its share of the byte budget
        (its bytes are then taken from the budget), and what happened, for the answer;
        read in ``block`` windows (the tile size: a COG's native tiles, once each) unless
        ``canvas``, the scene already shrunk to ``quicklook_px``, is given."""
        st = self.settings
        return fitted(pixels, st.quicklook_px, st.quicklook_quality,
                      st.quicklook_max_budget_share * budget, block, canvas)

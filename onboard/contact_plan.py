"""This satellite's contact schedule, made from its settings when the service starts.

One of four, as the settings say (they check only that one is given): a contact plan
computed from orbits (``targetfuse plan-contacts``), explicit windows, a periodic schedule,
or a link that never closes. A plan holds every satellite's windows, each with its station
and rate: ``read_windows`` reads it (the settings do not: constructing them reads no file),
keeps this satellite's (the only one of a plan of one, else ``contact_plan_satellite``),
made fit for one radio (``shared.orbits.plan.single_radio``), and bounds their number
(``MAX_PLAN_WINDOWS``, repeats included: a bound on memory); whatever is wrong with the plan
is a ValueError naming the setting, raised at start-up, before the service serves
(``onboard.startup``). ``contact_schedule`` then makes the schedule, a replay moving the
windows to start ``contact_plan_replay_lead_s`` after the moment it is made, sped up and
repeated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onboard.link.windows import ContactSchedule
from onboard.settings import OnboardSettings

if TYPE_CHECKING:  # read when a plan is: the orbits' modules stay out of start-up otherwise
    from shared.orbits.plan import ContactWindow

# The most windows one satellite's schedule holds (a repeated plan): about 30 years of
# passes every 15 minutes, a few tens of MB.
MAX_PLAN_WINDOWS = 1_000_000


@dataclass(frozen=True)
class PlanWindows:
    """This satellite's windows of a contact plan, and, when the settings replay it, the span
    of the whole plan (what a replay moves: one start for every satellite, so their passes
    keep their order)."""

    windows: list[ContactWindow]
    span: tuple[float, float] | None = None


def read_windows(settings: OnboardSettings) -> PlanWindows:
    """This satellite's windows of ``contact_plan_file``, made fit for one radio, checked."""
    from shared.orbits.plan import plan_span, read_plan, single_radio

    st = settings
    try:
        meta, windows = read_plan(st.contact_plan_file)
    except OSError as exc:
        raise ValueError(f"contact_plan_file: cannot read {st.contact_plan_file}: "
                         f"{exc.strerror}") from None
    names = sorted({w.satellite for w in windows})
    sat = st.contact_plan_satellite
    if sat is None:
        if len(names) != 1:
            raise ValueError(f"contact_plan_file has {len(names)} satellites: name this "
                             f"one with contact_plan_satellite (one of {names[:20]})")
        sat = names[0]
    mine = single_radio(windows, sat)
    if not mine:
        raise ValueError(f"contact_plan_file has no window for satellite {sat!r} "
                         f"(it has {names[:20]})")
    if len(mine) * st.contact_plan_repeat > MAX_PLAN_WINDOWS:
        raise ValueError(f"contact_plan_repeat {st.contact_plan_repeat} makes "
                         f"{len(mine) * st.contact_plan_repeat:,} windows of this "
                         f"satellite; at most {MAX_PLAN_WINDOWS:,}")
    replay = st.contact_plan_replay_lead_s is not None
    return PlanWindows(mine, plan_span(meta, windows) if replay else None)


def plan_windows(settings: OnboardSettings, now: float | None = None,
                 read: PlanWindows | None = None) -> list[ContactWindow]:
    """This satellite's windows of the contact plan (``read``: as read at start; default:
    read now), replayed from ``now`` (default the present) when the settings say so."""
    from shared.orbits.plan import replayed

    st = settings
    plan = read or read_windows(st)
    if st.contact_plan_replay_lead_s is None:
        return plan.windows
    at = (time.time() if now is None else now) + st.contact_plan_replay_lead_s
    return replayed(plan.windows, plan.span, at, st.contact_plan_speedup,
                    st.contact_plan_repeat)


def contact_schedule(settings: OnboardSettings, now: float | None = None,
                     read: PlanWindows | None = None) -> ContactSchedule:
    """The schedule the settings give (``now``: when a replayed plan is replayed from;
    ``read``: the plan's windows as read at start, default read now)."""
    if settings.contact_plan_file is not None:
        return ContactSchedule.from_plan(plan_windows(settings, now, read),
                                         settings.contact_plan_shift_s)
    if settings.contact_windows:
        return ContactSchedule(windows=tuple(tuple(map(float, p)) for p in
                                             json.loads(settings.contact_windows)))
    if settings.contact_period_s is not None:
        return ContactSchedule(period_s=settings.contact_period_s,
                               duration_s=settings.contact_duration_s)
    return ContactSchedule.always()

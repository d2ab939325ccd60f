"""The simulated day's link and ground model (lab.constellation.day): FIFO over one radio's
passes, a tile cut by a pass's end sent again whole through the next station and counted
once, workers first in first out; and a tiny day through the real planning and counters."""

from __future__ import annotations

import pytest

from lab.constellation.day import Item, Radio, Scenes, simulate
from lab.constellation.orbits.imaging import Capture
from shared.orbits.plan import ContactWindow


def window(station, start, end, rate=100.0, sat="SAT"):
    return ContactWindow(sat, station, start, end, 45.0, rate, rate)


def test_a_tile_cut_by_the_end_of_a_pass_goes_again_whole_through_the_next_station():
    radio = Radio([window("A", 0, 10), window("B", 20, 30)])
    radio.queue += [Item("s", 0, 500.0), Item("s", 1, 800.0)]
    radio.drain(100)
    assert [(round(t, 6), tile, st) for t, _, tile, st, _ in radio.arrivals] == \
        [(5.0, 0, "A"), (28.0, 1, "B")]  # 500 B at 100 B/s, then 800 B whole after the cut
    assert radio.resent == 1 and not radio.queue


def test_draining_in_steps_is_draining_at_once():
    def fresh():
        r = Radio([window("A", 0, 10), window("B", 20, 30)])
        r.queue += [Item("s", i, 300.0) for i in range(5)]
        return r
    whole, steps = fresh(), fresh()
    whole.drain(100)
    for t in (2, 7, 15, 22, 26, 100):
        steps.drain(t)
    def rounded(r):
        return [(round(t, 6), tile, st) for t, _, tile, st, _ in r.arrivals]
    assert rounded(steps) == rounded(whole) and len(whole.arrivals) == 5
    assert steps.resent == whole.resent == 1  # item 3 cut at 10, whole again in B


@pytest.fixture(scope="module")
def scenes():
    return Scenes(size=512)


def capture(sid, t, sat="SAT"):
    return Capture(sid, sat, "Somewhere", "airport", t, 1.0, 30.0, None, None)


def test_a_small_day_accounts_for_every_capture_and_every_byte(scenes):
    windows = [window("A", 100, 160, 2000.0), window("B", 400, 430, 2000.0),
               window("A", 1000, 1060, 2000.0), window("B", 1300, 1400, 2000.0)]
    caps = [capture("x-1", 50), capture("x-2", 380)]
    both = simulate(caps, windows, scenes, ["A", "B"], end=1500, drain_end=1500, budget=0.5)
    alone = simulate(caps, windows, scenes, ["A"], end=1500, drain_end=1500, budget=0.5)
    for run in (both, alone):
        assert sorted(r["scene_id"] for r in run["scene_rows"]) == ["x-1", "x-2"]
        assert sum(s["bytes_sent"] for s in run["station_table"]) == run["bytes_sent"]
        done = [r for r in run["scene_rows"] if r["complete"] is not None]
        assert all(r["complete"] >= r["capture"] for r in done)
    # B's passes only add capacity: with A alone nothing goes through B.
    assert [s["bytes_sent"] for s in alone["station_table"]] == [alone["bytes_sent"]]
    row = {r["scene_id"]: r for r in both["scene_rows"]}["x-2"]
    assert row["complete"] is None or row["complete"] >= 400  # no pass before 400


def test_one_antenna_serves_one_satellite_at_a_time(scenes):
    # Two satellites over station A at once: with one antenna the second waits its turn.
    windows = [window("A", 100, 160, 2000.0, "S1"), window("A", 120, 200, 2000.0, "S2")]
    caps = [capture("y-1", 50, "S1"), capture("y-2", 60, "S2")]
    free = simulate(caps, windows, scenes, ["A"], end=300, drain_end=300, budget=0.5)
    one = simulate(caps, windows, scenes, ["A"], end=300, drain_end=300, budget=0.5,
                   antennas=1)
    (f,), (o,) = free["station_table"], one["station_table"]
    assert f["contact_minutes"] == o["contact_minutes"] == pytest.approx(140 / 60, abs=0.05)
    assert f["served_minutes"] == pytest.approx(140 / 60, abs=0.05)
    assert o["served_minutes"] == pytest.approx(100 / 60, abs=0.05)  # 100..160, 160..200
    assert o["bytes_sent"] <= f["bytes_sent"]

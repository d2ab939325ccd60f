"""The contact plan file, one radio's view of it, and the onboard schedule built from it:
the settings check only that their fields fit together; the plan is read, and refused with
the reason, when the service starts."""

import json

import pytest

from onboard import startup
from onboard.contact_plan import contact_schedule, plan_windows
from onboard.link.windows import ContactSchedule
from onboard.settings import OnboardSettings
from shared.orbits.plan import ContactWindow, read_plan, single_radio, station_antennas, write_plan


def w(sat, station, start, end, rate=1000.0):
    return ContactWindow(sat, station, start, end, 40.0, rate, rate * 2)


PLAN = [w("A", "Svalbard", 100, 700, 2000.0), w("A", "Kiruna", 400, 1000, 500.0),
        w("A", "Inuvik", 450, 650), w("B", "Svalbard", 200, 800), w("A", "Troll", 5000, 5600)]


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.json"
    write_plan(path, PLAN, start=0, end=6000)
    return path


def test_a_plan_reads_back(plan_file):
    meta, windows = read_plan(plan_file)
    assert meta["start"] == 0 and sorted(windows, key=lambda x: (x.start, x.station)) == \
        sorted(PLAN, key=lambda x: (x.start, x.station))
    doc = json.loads(plan_file.read_text())
    assert doc["windows"][0]["start_utc"] == "1970-01-01T00:01:40Z"
    assert doc["windows"][0]["bytes"] == 2000 * 600


def test_one_radio_stays_with_its_station_then_hands_over():
    got = single_radio(PLAN, "A")
    assert [(x.station, x.start, x.end) for x in got] == [
        ("Svalbard", 100, 700), ("Kiruna", 700, 1000), ("Troll", 5000, 5600)]


def test_the_onboard_schedule_carries_station_and_rate(plan_file):
    s = contact_schedule(OnboardSettings(contact_plan_file=plan_file, contact_plan_satellite="A",
                                         contact_plan_shift_s=1000))
    assert s.window(1150) == (1100, 1700, "Svalbard", 2000.0)
    assert s.window(1800).station == "Kiruna" and s.window(3000) is None
    assert s.next_open(3000) == 6000
    # The throttle's bytes are the window's own rate, not the configured one.
    assert s.bytes_left(1800, 1e9) == pytest.approx(200 * 500.0)
    assert s.bytes_left(3000, 1e9) == 0.0


def test_a_plan_replayed_from_now_runs_faster_and_keeps_each_pass_s_bytes(plan_file,
                                                                         tmp_path):
    s = OnboardSettings(contact_plan_file=plan_file, contact_plan_satellite="B",
                        contact_plan_replay_lead_s=30, contact_plan_speedup=10)
    (b,) = plan_windows(s, now=1_000_000.0)
    # B's pass at 200..800 of a plan starting at 0: 1,000,030 + 20 .. + 80, ten times the rate
    assert (b.start, b.end, b.rate_bytes_s) == (1_000_050.0, 1_000_110.0, 10_000.0)
    assert b.bytes == PLAN[3].bytes
    a = plan_windows(s.model_copy(update={"contact_plan_satellite": "A"}), now=1_000_000.0)
    assert a[0].start == 1_000_040.0  # one clock for every satellite of the plan
    no_start = tmp_path / "no-start.json"
    write_plan(no_start, PLAN)  # without its start: from its first window
    (b,) = plan_windows(OnboardSettings(contact_plan_file=no_start, contact_plan_satellite="B",
                                        contact_plan_replay_lead_s=0), now=0.0)
    assert (b.start, b.end) == (100.0, 700.0)
    again = plan_windows(s.model_copy(update={"contact_plan_repeat": 3}), now=0.0)
    # the plan (0..6000 s, 600 s at ten times) three times back to back
    assert [x.start for x in again] == [50.0, 650.0, 1250.0]
    import time

    sched = contact_schedule(s)  # replayed from the service's start
    assert time.time() + 15 < sched.next_open(time.time()) < time.time() + 60
    # read once at start; the schedule made later is replayed from when it is made
    started = startup.start(s.model_copy(update={"auth": False}))
    assert started.schedule(now=1_000_000.0).window(1_000_060.0).start == 1_000_050.0


def started(tmp_path, **settings):
    """What the service reads at start with these settings (no keys: auth off)."""
    return startup.start(OnboardSettings(data_dir=tmp_path, auth=False, **settings))


def test_bad_replays_are_refused(plan_file, tmp_path):
    for kw, message in (({"contact_plan_speedup": 5}, "replay_lead_s too"),
                        ({"contact_plan_repeat": 2}, "replay_lead_s too"),
                        ({"contact_plan_replay_lead_s": 1, "contact_plan_shift_s": 5},
                         "not both"),
                        ({"contact_plan_replay_lead_s": 1, "contact_plan_speedup": 0.5},
                         "greater than or equal")):
        with pytest.raises(ValueError, match=message):
            OnboardSettings(contact_plan_file=plan_file, contact_plan_satellite="A", **kw)
    with pytest.raises(ValueError, match="needs a contact_plan_file"):
        OnboardSettings(contact_plan_replay_lead_s=1)
    many = tmp_path / "many.json"
    write_plan(many, [w("A", "K", 10 * i, 10 * i + 5) for i in range(101)])
    with pytest.raises(ValueError, match="1,010,000 windows"):  # a bound on memory
        started(tmp_path, contact_plan_file=many, contact_plan_replay_lead_s=1,
                contact_plan_repeat=10_000)
    odd = tmp_path / "odd.json"
    write_plan(odd, PLAN, start="yesterday")
    with pytest.raises(ValueError, match="start must be a number"):
        started(tmp_path, contact_plan_file=odd, contact_plan_satellite="A",
                contact_plan_replay_lead_s=1)
    started(tmp_path, contact_plan_file=odd, contact_plan_satellite="A")  # not replayed


def test_bad_plans_and_settings_are_refused(plan_file, tmp_path):
    with pytest.raises(ValueError, match="2 satellites"):
        started(tmp_path, contact_plan_file=plan_file)
    with pytest.raises(ValueError, match="no window for satellite 'C'"):
        started(tmp_path, contact_plan_file=plan_file, contact_plan_satellite="C")
    with pytest.raises(ValueError, match="one contact schedule"):
        OnboardSettings(contact_plan_file=plan_file, contact_plan_satellite="A",
                        contact_period_s=100, contact_duration_s=10)
    with pytest.raises(ValueError, match="needs a contact_plan_file"):
        OnboardSettings(contact_plan_satellite="A")
    with pytest.raises(ValueError):
        OnboardSettings(contact_plan_file=plan_file, contact_plan_satellite="A",
                        contact_plan_shift_s=float("nan"))
    with pytest.raises(ValueError, match="contact_plan_file: cannot read .*missing.json"):
        started(tmp_path, contact_plan_file=tmp_path / "missing.json")
    for text, message in (("[", "not JSON"), ('{"windows": []}', "not a contact plan"),
                          ('{"format": "targetfuse-contact-plan/1", "windows": [{}]}',
                           "window 0")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            started(tmp_path, contact_plan_file=bad)


def test_the_settings_read_no_plan_the_service_refuses_a_bad_one_at_start(tmp_path):
    """Building the settings reads nothing; the service factory reads the plan and stops on
    a bad one with the reason, before it serves."""
    from onboard.app import create_app

    missing = tmp_path / "missing.json"
    settings = OnboardSettings(data_dir=tmp_path, auth=False, contact_plan_file=missing)
    assert settings.contact_plan_file == missing  # built: the file is not read yet
    with pytest.raises(ValueError, match="contact_plan_file: cannot read .*missing.json: "
                                         "No such file or directory"):
        create_app(settings)


def test_the_schedule_refuses_mismatched_stations_and_rates():
    with pytest.raises(ValueError, match="one value per window"):
        ContactSchedule(windows=((0, 1), (2, 3)), stations=("a",))
    with pytest.raises(ValueError, match="rate must be > 0"):
        ContactSchedule(windows=((0, 1),), rates=(0.0,))
    plain = ContactSchedule(windows=((0, 10),))
    assert plain.window(5) == (0, 10, None, None) and plain.bytes_left(5, 100.0) == 500.0


def test_a_station_s_antennas_serve_first_come_first_served():
    ws = [w("A", "K", 0, 100), w("B", "K", 10, 50), w("C", "K", 20, 200), w("D", "K", 60, 90),
          w("E", "S", 0, 100)]
    one = station_antennas(ws, 1)
    # A holds it to 100: B (ends 50) and D (ends 90) never get it; C takes the rest from 100.
    assert [(x.satellite, x.start, x.end) for x in one if x.station == "K"] == \
        [("A", 0, 100), ("C", 100, 200)]
    assert [x.satellite for x in one if x.station == "S"] == ["E"]  # per station
    two = station_antennas(ws, 2)
    # C waits for B's antenna (free at 50); D (60..90) finds both busy past its end.
    assert [(x.satellite, x.start) for x in two if x.station == "K"] == \
        [("A", 0), ("B", 10), ("C", 50)]
    assert station_antennas(ws, 5) == sorted(ws, key=lambda x: (x.start, x.station))
    with pytest.raises(ValueError, match="at least one antenna"):
        station_antennas(ws, 0)

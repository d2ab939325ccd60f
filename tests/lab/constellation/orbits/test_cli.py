"""``targetfuse plan-contacts`` writes a contact plan the onboard service takes and an
imaging plan whose captures come before the passes that take them down."""

import json

from onboard.contact_plan import contact_schedule
from onboard.settings import OnboardSettings
from shared.orbits.plan import read_plan
from targetfuse import cli

from .orbit_fixtures import SVALBARD


def inputs(tmp_path, tle_text):
    tle = tmp_path / "sats.tle"
    tle.write_text(tle_text)
    stations = tmp_path / "stations.csv"
    stations.write_text("name,latitude_deg,longitude_deg,altitude_m\n"
                        f"{SVALBARD.name},{SVALBARD.latitude_deg},{SVALBARD.longitude_deg},500\n"
                        "Matera,40.649,16.704,530\n")
    return tle, stations


def test_plans_for_a_generated_constellation(tmp_path, tle_text, capsys):
    tle, stations = inputs(tmp_path, tle_text)
    out = tmp_path / "plan"
    assert cli.main(["plan-contacts", "--tle", str(tle), "--stations", str(stations),
                     "--start", "2026-10-01T00:00:00Z", "--hours", "8", "--planes", "6",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("12 satellites, 2 stations, 2026-10-01T00:00:00Z")
    meta, windows = read_plan(out / "contact_plan.json")
    assert len(meta["satellites"]) == 12 and meta["pattern"]["planes_per_satellite"] == 6
    assert {w.station for w in windows} == {"Svalbard", "Matera"}
    assert len({w.satellite for w in windows}) == 12  # every satellite sees Svalbard
    schedule = contact_schedule(OnboardSettings(contact_plan_file=out / "contact_plan.json",
                                                contact_plan_satellite="SSO-A/P1S0"))
    first = schedule.windows[0]
    assert schedule.window(first[0]).station in ("Svalbard", "Matera")
    imaging = json.loads((out / "imaging_plan.json").read_text())
    caps = imaging["captures"]
    assert caps and [c["time"] for c in caps] == sorted(c["time"] for c in caps)
    assert all(c["classes"] in (["aircraft"], ["ship"]) for c in caps)


def test_bad_input_is_an_error_line_and_exit_2(tmp_path, tle_text, capsys):
    tle, stations = inputs(tmp_path, tle_text)
    bad = tmp_path / "bad.tle"
    bad.write_text(tle_text.replace(tle_text.splitlines()[1][60:69], "x" * 9, 1))
    cases = ([["--tle", str(bad), "--stations", str(stations)], "bad.tle:2"],
             [["--tle", str(tle), "--stations", str(tmp_path / "none.csv")], "none.csv"],
             [["--tle", str(tle), "--stations", str(stations), "--station", "Mars"],
              "unknown stations"],
             [["--tle", str(tle), "--stations", str(stations), "--start", "noon"],
              "--start must be ISO 8601"])
    for args, message in cases:
        assert cli.main(["plan-contacts", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("targetfuse plan-contacts: error:") and message in err, err


def test_the_real_sentinel2_day_over_svalbard(real_orbits, tmp_path, capsys):
    assert cli.main(["plan-contacts", "--station", "Svalbard", "--hours", "24",
                     "--out", str(tmp_path)]) == 0
    _, windows = read_plan(tmp_path / "contact_plan.json")
    for sat in ("SENTINEL-2A", "SENTINEL-2B", "SENTINEL-2C"):
        assert sum(w.satellite == sat for w in windows) >= 9

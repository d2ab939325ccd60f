"""The constellation commands read orbit data shipped with the project (no ``../shared``
needed), say where each file comes from, and refuse a station file that cannot carry the
live run's station kill instead of silently skipping it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.constellation.orbits import SHIPPED, orbits_root
from lab.constellation.orbits.stations import load_stations
from lab.constellation.orbits.tle import load_tles


def test_the_shipped_orbit_data_is_the_default_and_has_its_provenance(monkeypatch):
    monkeypatch.delenv("TARGETFUSE_ORBITS", raising=False)
    assert orbits_root() == SHIPPED and SHIPPED.is_relative_to(Path(__file__).parents[3])
    sats = load_tles(SHIPPED / "sentinel2.tle")
    provenance = (SHIPPED / "PROVENANCE.md").read_text()
    assert "CelesTrak" in provenance
    for s in sats:  # every satellite's NORAD number and epoch day are the ones documented
        assert str(s.satrec.satnum) in provenance
    days = {f"{s.satrec.epochdays:.2f}"[:3] for s in sats}
    assert days <= {"273", "274"} and "273.98-274.30" in provenance
    names = {s.name for s in load_stations(SHIPPED / "ground_stations.csv")}
    for name in names:
        assert name in provenance
    from lab.constellation.live import STATIONS
    assert set(STATIONS) <= names


def test_orbits_env_must_be_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TARGETFUSE_ORBITS", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="not a folder"):
        orbits_root()
    monkeypatch.setenv("TARGETFUSE_ORBITS", str(tmp_path))
    assert orbits_root() == tmp_path


def test_plan_contacts_runs_from_the_shipped_data(monkeypatch, tmp_path, capsys):
    from targetfuse.cli import main

    monkeypatch.delenv("TARGETFUSE_ORBITS", raising=False)
    out = tmp_path / "plan"
    assert main(["plan-contacts", "--hours", "2", "--station", "Svalbard",
                 "--out", str(out)]) == 0
    assert (out / "contact_plan.json").exists() and (out / "imaging_plan.json").exists()
    assert re.search(r"Svalbard\s+[1-9]", capsys.readouterr().out)


def test_a_station_file_without_the_station_to_kill_is_refused(monkeypatch, tmp_path):
    """With home-made files lacking Kiruna the live run's station kill cannot happen: it
    says so at once instead of running without it."""
    from lab.constellation.live import compressed_plan

    (tmp_path / "sentinel2.tle").write_text((SHIPPED / "sentinel2.tle").read_text())
    rows = (SHIPPED / "ground_stations.csv").read_text().splitlines()
    (tmp_path / "ground_stations.csv").write_text(
        "\n".join(r for r in rows if not r.startswith("Kiruna")) + "\n")
    monkeypatch.setenv("TARGETFUSE_ORBITS", str(tmp_path))
    with pytest.raises(ValueError, match="has no Kiruna.*the station it kills"):
        compressed_plan(80.0, 50_000.0, 30.0, 6.5)


def test_the_live_summary_says_which_faults_were_injected():
    from lab.constellation.live import summarise

    events = [(1.0, "6 scenes posted"), (5.0, "worker-1 killed (SIGKILL) while 3 tiles were "
                                              "fetched and unacknowledged")]
    r = summarise({}, {}, {}, {}, {}, {}, events, [], {"redeliveries": 1, "pending": 0,
                                                      "ack_pending": 0}, 1.0, [], {})
    assert r["faults"] == {"station_killed": False, "workers_killed": 1}
    events.append((9.0, "station-Kiruna killed (SIGKILL) mid-pass, S2A sending to it"))
    r = summarise({}, {}, {}, {}, {}, {}, events, [], {"redeliveries": 1, "pending": 0,
                                                      "ack_pending": 0}, 1.0, [], {})
    assert r["faults"]["station_killed"]


def test_no_user_command_reads_the_shared_folder_by_default():
    """``../shared`` is optional: only the real-dev data commands (opt-in, --real-dev) and
    the opt-in tests look there."""
    root = Path(__file__).parents[3]
    offenders = []
    for path in [*root.glob("lab/*.py"), *root.glob("onboard/**/*.py"),
                 *root.glob("ground/**/*.py"), *root.glob("shared/**/*.py")]:
        text = path.read_text()
        if re.search(r'"shared"\s*/\s*"data"\s*/\s*"orbits"|shared/data/orbits', text):
            offenders.append(str(path.relative_to(root)))
    assert not offenders, offenders


def test_out_is_a_folder_and_a_file_name_is_a_clear_error(tmp_path, capsys):
    from targetfuse.cli import main

    for argv in (["constellation-live", "--out", str(tmp_path / "live.json")],
                 ["faults", "--out", str(tmp_path / "faults.json")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--out is a folder" in err and f"--out {tmp_path}" in err, err
        assert not list(tmp_path.iterdir())  # nothing started, nothing written

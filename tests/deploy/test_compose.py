"""Structure of docker-compose.yml and the Dockerfiles (the real stack: test_compose_stack)."""

import re
from pathlib import Path

import yaml

from ground.settings import GroundSettings
from onboard.settings import OnboardSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def dockerfile(name: str) -> str:
    return (ROOT / "deploy" / f"{name}.Dockerfile").read_text()


def test_services_health_and_order():
    assert {"ground", "onboard", "link", "experiment"} <= set(SERVICES)
    for name in ("ground", "onboard"):
        check = SERVICES[name]["healthcheck"]
        assert "/healthz" in " ".join(check["test"]) and check["retries"] >= 1
    assert SERVICES["onboard"]["depends_on"]["ground"]["condition"] == "service_healthy"
    assert SERVICES["experiment"]["profiles"] == ["experiment"]


def test_onboard_is_limited_like_a_satellite_computer_and_the_link_is_shaped():
    onboard = SERVICES["onboard"]
    assert re.match(r"\$\{ONBOARD_CPUS:-1(\.0)?\}", str(onboard["cpus"]))
    assert re.match(r"\$\{ONBOARD_MEMORY:-1g\}", str(onboard["mem_limit"]))
    link = SERVICES["link"]
    assert link["network_mode"] == "service:onboard"
    assert "NET_ADMIN" in link["cap_add"]
    assert {"LINK_RATE", "LINK_DELAY", "LINK_JITTER", "LINK_LOSS"} <= set(link["environment"])


def test_stores_live_in_named_volumes_and_ports_are_published():
    assert {"ground-store", "onboard-outbox"} <= set(COMPOSE["volumes"])
    assert "ground-store:/data" in SERVICES["ground"]["volumes"]
    assert "onboard-outbox:/data" in SERVICES["onboard"]["volumes"]
    assert any(p.endswith(":8081") for p in SERVICES["ground"]["ports"])
    assert any(p.endswith(":8080") for p in SERVICES["onboard"]["ports"])


def test_environment_names_are_settings_fields():
    for service, cls, prefix in (("ground", GroundSettings, "TARGETFUSE_GROUND_"),
                                 ("onboard", OnboardSettings, "TARGETFUSE_ONBOARD_")):
        env = SERVICES[service]["environment"]
        names = [k[len(prefix):].lower() for k in env if k.startswith(prefix)]
        assert names and set(names) <= set(cls.model_fields), service
    for name in ("onboard", "ground"):
        for key in re.findall(r"TARGETFUSE_[A-Z]+_([A-Z_]+)=", dockerfile(name)):
            cls = OnboardSettings if name == "onboard" else GroundSettings
            assert key.lower() in cls.model_fields


def stage(text: str, name: str) -> str:
    """One build stage of a Dockerfile, from its FROM line to the next."""
    return re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", text, re.M | re.S).group(1)


def test_dockerfiles_are_multistage_non_root_and_run_the_tested_commands():
    for name, command in (("onboard", ["targetfuse-onboard"]),
                          ("ground", ["targetfuse-ground"])):
        text = dockerfile(name)
        assert len(re.findall(r"^FROM ", text, re.M)) >= 2
        assert re.search(r"^USER (?!root)\S+", text, re.M)
        assert "PYTHONUNBUFFERED=1" in text and "HEALTHCHECK" in text
        entry = re.findall(r"^ENTRYPOINT (\[.*\])", text, re.M)[-1]  # the default target's
        assert yaml.safe_load(entry) == command  # what tests/deploy/test_netns.py runs
        for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
            for path in src.replace("\\", " ").split():
                assert (ROOT / path).exists(), f"{name}.Dockerfile copies missing {path}"
    assert "download.pytorch.org/whl/cpu" in dockerfile("ground")


def test_each_image_installs_only_its_own_distributions():
    onboard = dockerfile("onboard")
    copied = {p for src in re.findall(r"^COPY (?!--from)(\S+) ", onboard, re.M)
              for p in [src.split("/")[0]]}
    assert copied == {"shared", "onboard", "models"}  # no ground/, no lab/, no command
    assert re.search(r"pip install \./shared \./onboard( |\n|\\|$)", onboard)
    # The ground service's image (the default target) is built from the stage that holds
    # the shared library and the ground distribution alone; the tooling is a second target.
    ground = dockerfile("ground")
    build = stage(ground, "build")
    assert "lab" not in re.findall(r"^COPY (\S+)", build, re.M)
    assert "pip install ./shared ./ground" in build
    assert "--from=build " in stage(ground, "ground")
    assert "./lab" in stage(ground, "lab-build")
    assert re.findall(r"^FROM \S+ AS (\S+)", ground, re.M)[-1] == "ground"
    assert SERVICES["ground"]["build"]["target"] == "ground"
    assert SERVICES["experiment"]["build"]["target"] == "lab"
    assert SERVICES["experiment"]["image"] != SERVICES["ground"]["image"]


def test_shape_script_refuses_bad_values():
    import subprocess

    script = str(ROOT / "deploy" / "shape.sh")
    for args, words in ((["apply", "--dev", "lo", "--rate", "fast"], "bad rate"),
                        (["apply", "--dev", "lo", "--rate", "1mbit", "--loss", "150"], "loss"),
                        (["apply", "--dev", "lo", "--rate", "1mbit", "--delay", "soon"], "delay"),
                        (["apply", "--rate", "1mbit"], "--dev"),
                        (["windows", "--dev", "lo", "--up", "0", "--down", "5"], "--up"),
                        (["bogus"], "usage")):
        out = subprocess.run(["sh", script, *args], capture_output=True, text=True)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)


def test_the_stack_makes_its_keys_and_both_services_use_them():
    keys = SERVICES["keys"]
    assert keys["entrypoint"][-2:] == ["shared.api_keys", "/keys"]
    assert SERVICES["ground"]["depends_on"]["keys"]["condition"] == \
        "service_completed_successfully"
    for name, files in (("ground", {"API_KEYS_FILE", "LINK_KEYS_FILE", "TLS_CERT_FILE",
                                    "TLS_KEY_FILE"}),
                        ("onboard", {"API_KEYS_FILE", "GROUND_KEY_FILE", "GROUND_TLS_CA_FILE"})):
        env = SERVICES[name]["environment"]
        prefix = f"TARGETFUSE_{name.upper()}_"
        assert all(env[prefix + f].startswith("/keys/") for f in files), name
        assert "keys:/keys:ro" in SERVICES[name]["volumes"]
    assert "keys" in COMPOSE["volumes"]


def test_the_constellation_profile_is_two_stations_two_workers_three_satellites():
    profile = {n: s for n, s in SERVICES.items() if "constellation" in s.get("profiles", [])}
    stations = [n for n in profile if n.startswith("station-")]
    workers = [n for n in profile if n.startswith("worker-")]
    satellites = [n for n in profile if n.startswith("satellite-")]
    assert (len(stations), len(workers), len(satellites)) == (2, 2, 3)
    assert {"postgres", "nats", "constellation-keys"} <= set(profile)
    assert "-js" in profile["nats"]["command"]
    for name in stations + workers:
        env = profile[name]["environment"]
        assert env["TARGETFUSE_GROUND_DATABASE_URL"].startswith("postgresql://")
        assert env["TARGETFUSE_GROUND_NATS_URL"].startswith("nats://")
        names = [k[len("TARGETFUSE_GROUND_"):].lower() for k in env]
        assert set(names) <= set(GroundSettings.model_fields), name
    assert all(profile[w]["entrypoint"] == ["targetfuse-ground-worker"] for w in workers)
    assert all(profile[s]["environment"]["TARGETFUSE_GROUND_COUNT_HERE"] == "false"
               for s in stations)
    keys = {profile[s]["environment"]["TARGETFUSE_ONBOARD_GROUND_KEY_FILE"] for s in satellites}
    assert len(keys) == 3  # each satellite its own link key
    # The link runs TLS: the stations present the keys step's certificate, the satellites
    # trust its CA (shared/wire/link_pki.py names station-1 and station-2).
    assert all(profile[s]["environment"]["TARGETFUSE_GROUND_TLS_CERT_FILE"] ==
               "/keys/link-ground.pem" for s in stations)
    assert all(profile[s]["environment"]["TARGETFUSE_ONBOARD_GROUND_TLS_CA_FILE"] ==
               "/keys/link-ca.pem" for s in satellites)
    for s in satellites:
        names = [k[len("TARGETFUSE_ONBOARD_"):].lower() for k in profile[s]["environment"]]
        assert set(names) <= set(OnboardSettings.model_fields), s


def test_the_constellation_satellites_fly_their_real_plan_to_both_stations():
    import json

    from onboard.contact_plan import plan_windows
    from shared.orbits.plan import read_plan

    profile = {n: s for n, s in SERVICES.items() if "constellation" in s.get("profiles", [])}
    satellites = [n for n in profile if n.startswith("satellite-")]
    plan = ROOT / "deploy" / "constellation" / "contact_plan.json"
    _, windows = read_plan(plan)
    assert {w.station for w in windows} == {"Kiruna", "Svalbard"}
    flown = set()
    for name in satellites:
        env = profile[name]["environment"]
        assert "./deploy/constellation:/plan:ro" in profile[name]["volumes"]
        assert env["TARGETFUSE_ONBOARD_CONTACT_PLAN_FILE"] == "/plan/contact_plan.json"
        targets = json.loads(env["TARGETFUSE_ONBOARD_STATION_TARGETS"])
        assert {t.split(":")[0] for t in targets.values()} == {"station-1", "station-2"}
        assert set(targets) == {w.station for w in windows}  # every window has its station
        assert set(profile[name]["depends_on"]) >= {"station-1", "station-2"}
        settings = OnboardSettings(**{  # what the container's settings make of the plan
            k[len("TARGETFUSE_ONBOARD_"):].lower(): v for k, v in env.items()
            if k.startswith("TARGETFUSE_ONBOARD_CONTACT_PLAN")
            and not k.endswith("_FILE")}, contact_plan_file=plan)
        mine = plan_windows(settings, now=0.0)
        assert {w.station for w in mine} == {"Kiruna", "Svalbard"}
        assert mine[-1].end > 12 * 3600  # replayed for half a day of the stack or more
        flown.add(settings.contact_plan_satellite)
    assert flown == {w.satellite for w in windows} and len(flown) == 3
    assert profile["constellation-keys"]["entrypoint"][-1] == "3"


def test_the_segments_queue_lets_no_one_in_without_a_user(tmp_path):
    """Issue 26, finding 9: the segment's NATS had no credentials in compose or k8s. Now the
    server reads its users (made by the keys step, owner-only) and stations and workers
    each log in as their own user with only their subjects."""
    import stat

    import yaml

    from shared.api_keys import nats_users
    from shared.paths import PROJECT_ROOT

    conf = nats_users(tmp_path)
    text = conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    for user in ("station", "worker"):
        pw = (tmp_path / f"nats-{user}-password").read_text().strip()
        assert len(pw) >= 24 and f'user: {user}, password: "{pw}"' in text
    assert nats_users(tmp_path).read_text() == text  # made once, then kept
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    assert "-c" in compose["nats"]["command"]
    assert "include keys/nats-users.conf" in (PROJECT_ROOT / "deploy" / "constellation" /
                                              "nats.conf").read_text()
    assert "constellation-keys:/etc/nats/keys:ro" in compose["nats"]["volumes"]
    for name, user in (("station-1", "station"), ("worker-1", "worker")):
        env = compose[name]["environment"]
        assert env["TARGETFUSE_GROUND_NATS_USER"] == user
        assert env["TARGETFUSE_GROUND_NATS_PASSWORD_FILE"] == f"/keys/nats-{user}-password"
    k8s = PROJECT_ROOT / "deploy" / "k8s"
    for name, user in (("station.yaml", "station"), ("worker.yaml", "worker")):
        assert f"/keys/nats-{user}-password" in (k8s / name).read_text()
    assert "include users/nats-users.conf" in (k8s / "nats.yaml").read_text()

"""Every model a compose default (or a Dockerfile, or a settings default) names is in the
image that serves it: static, no Docker needed.

Each Dockerfile is read stage by stage: what ends up under the image's models folder is
worked out from its ``COPY`` lines (from the build context or from another stage) and its
``RUN python -m shared.model_export ROLE SRC DEST PAIRS`` lines (the pairs' runtime files, read
from their cards, with ``ARG`` defaults and compose build args substituted). Each compose
service's image is the one a service builds under that name; the pair it serves is its
``TARGETFUSE_*_MODEL`` (``${VAR:-default}`` resolved to the default), else the settings
class's default; the files it needs are the ones its card names
(``shared.model_export.runtime_files``), so the check follows a retrained pair whatever its
files are called. A planted image that lacks the default pair fails the check."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ground.settings import GroundSettings
from onboard.settings import OnboardSettings
from shared.model_bundle import shipped_pairs
from shared.model_export import runtime_files

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
ROLES = {"onboard": ("TARGETFUSE_ONBOARD_", OnboardSettings),
         "ground": ("TARGETFUSE_GROUND_", GroundSettings)}


def resolve(value: str, args: dict[str, str]) -> str:
    """``${X:-d}`` / ``${X}`` / ``$X``: the build arg or compose default (no environment)."""
    def sub(m):
        name, default = m.group(1) or m.group(3), m.group(2)
        return args.get(name, default if default is not None else "")
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)",
                  lambda m: sub(m) if m.group(1) or m.group(3) else m.group(0), str(value))


def ignored(rel: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p + "/*")
               or rel.startswith(p.rstrip("/") + "/") for p in patterns)


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str]
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def stages(text: str) -> list[Stage]:
    text = re.sub(r"\\\n\s*", " ", text)
    out: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"FROM (\S+)(?: AS (\S+))?", line, re.I):
            out.append(Stage(m.group(2) or str(len(out)), m.group(1), []))
            continue
        out[-1].lines.append(line)
    return out


def models_in_image(dockerfile: Path, target: str | None, build_args: dict[str, str]
                    ) -> tuple[dict[str, set[str]], dict[str, str]]:
    """(path inside the image -> files there, relative to models/; ENV of the image)."""
    all_stages = {s.name: s for s in stages(dockerfile.read_text())}
    names = list(all_stages)

    def build(name: str) -> tuple[dict[str, set[str]], dict[str, str]]:
        st = all_stages[name]
        held, env = ({}, {}) if st.base not in all_stages else build(st.base)
        held = {k: set(v) for k, v in held.items()}
        args = dict(env.get("__args__", {}))  # not an ENV: the ARGs, carried down the chain
        for line in st.lines:
            if m := re.match(r"ARG (\w+)(?:=(\S*))?", line):
                args[m.group(1)] = build_args.get(m.group(1), m.group(2) or "")
            elif m := re.match(r"ENV (.+)", line):
                for k, v in re.findall(r"(\w+)=(\S+)", m.group(1)):
                    env[k] = v
            elif m := re.match(r"COPY --from=(\S+) (\S+) (\S+)$", line):
                src_held, _ = build(m.group(1))
                if m.group(2).rstrip("/") in src_held:
                    held[m.group(3).rstrip("/")] = set(src_held[m.group(2).rstrip("/")])
            elif m := re.match(r"COPY (?!--)(.+) (\S+)$", line):
                dest = m.group(2)
                for src in m.group(1).split():
                    src = resolve(src, args)
                    if src.rstrip("/") == "models":  # the whole folder
                        files = {str(p.relative_to(MODELS)) for p in MODELS.rglob("*")
                                 if p.is_file() and not ignored(str(p.relative_to(ROOT)))}
                        key = dest.rstrip("/") if dest.startswith("/") else \
                            "./" + dest.strip("./").rstrip("/")
                        held[key] = files
                    elif src.startswith("models/"):
                        rel = str(Path(src).relative_to("models"))
                        key = "/".join(dest.rstrip("/").split("/")[:-rel.count("/") - 1]) \
                            if dest.endswith("/") else dest
                        if (MODELS / rel).is_file() and not ignored(src):
                            held.setdefault(key or "/", set()).add(rel)
            elif m := re.search(r"python -m shared\.model_export (\w+) (\S+) (\S+) (.+)$", line):
                role, src, dest = m.group(1), m.group(2), m.group(3)
                pairs = resolve(m.group(4), args).split()
                have = held.get("./" + src.strip("./").rstrip("/"), set())
                if pairs == ["all"]:
                    pairs = shipped_pairs(role, MODELS)
                files = set()
                for pair in pairs:
                    for f in runtime_files(pair, role, MODELS):
                        rel = str(f.relative_to(MODELS))
                        if rel in have:  # only what the context copy brought in
                            files.add(rel)
                held[dest.rstrip("/")] = files
        env["__args__"] = args  # type: ignore[assignment]
        return held, env

    held, env = build(target or names[-1])
    env.pop("__args__", None)
    return held, env


def served(service: dict, role: str, image_env: dict[str, str]) -> tuple[str, str]:
    """(pair, models dir) a service of ``role`` serves: compose env, else the image's ENV,
    else the settings default."""
    prefix, settings = ROLES[role]
    env = {**image_env, **{k: resolve(v, {}) for k, v in
                           (service.get("environment") or {}).items()}}
    pair = env.get(prefix + "MODEL", settings.model_fields["model"].default)
    models_dir = env.get(prefix + "MODELS_DIR", str(settings.model_fields["models_dir"].default))
    return pair, models_dir


def problems(compose: dict, dockerfiles: dict[str, Path] | None = None) -> list[str]:
    services = compose["services"]
    builders = {s["image"]: s["build"] for s in services.values()
                if "build" in s and "image" in s}
    found = []
    for name, svc in services.items():
        build = svc.get("build") or builders.get(svc.get("image"))
        if build is None:
            continue  # postgres, nats: not ours
        path = (dockerfiles or {}).get(build["dockerfile"], ROOT / build["dockerfile"])
        text = path.read_text()
        entry = " ".join(svc.get("entrypoint") or re.findall(
            r'^ENTRYPOINT \["([^"]+)"', text, re.M)[-1:] or [""])
        if "onboard" in entry:
            roles = ["onboard"]
        elif "ground" in entry:
            roles = ["ground"]
        elif "targetfuse" in entry and "--model" in (svc.get("command") or []):
            roles = ["onboard", "ground"]  # the tooling runs both counters
        else:
            continue  # the key maker, the link shaper: no model
        held, image_env = models_in_image(path, build.get("target"),
                                          {k: resolve(v, {}) for k, v in
                                           (build.get("args") or {}).items()})
        for role in roles:
            if roles == ["onboard", "ground"]:
                cmd = svc["command"]
                pair = cmd[cmd.index("--model") + 1]
                models_dir = cmd[cmd.index("--models-dir") + 1] if "--models-dir" in cmd \
                    else "/app/models"
            else:
                pair, models_dir = served(svc, role, image_env)
            try:
                need = {str(f.relative_to(MODELS)) for f in runtime_files(pair, role, MODELS)}
            except FileNotFoundError as exc:
                found.append(f"{name}: serves {role} pair {pair!r}, not shipped: {exc}")
                continue
            missing = need - held.get(models_dir.rstrip("/"), set())
            if missing:
                found.append(f"{name} ({build['dockerfile']}): serves {role} pair {pair!r} "
                             f"from {models_dir}, its image lacks {sorted(missing)}")
    return found


def test_every_compose_service_s_image_carries_the_model_it_serves():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert problems(compose) == []


def test_every_compose_default_model_is_a_shipped_pair():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for svc in compose["services"].values():
        for key, value in (svc.get("environment") or {}).items():
            if key.endswith("_MODEL"):
                role = "onboard" if "ONBOARD" in key else "ground"
                assert resolve(value, {}) in shipped_pairs(role), (key, value)


def test_a_planted_image_without_the_default_pair_fails(tmp_path):
    """The onboard Dockerfile as it was (aircraft copied by name) under a compose file whose
    default is objects: the check names the service and the missing files."""
    old = tmp_path / "onboard.Dockerfile"
    old.write_text(
        "FROM python:3.11-slim AS build\nRUN true\nFROM python:3.11-slim\n"
        "COPY models/aircraft/shallow.json models/aircraft/shallow.int8.onnx \\\n"
        "     models/aircraft/confidence.json /app/models/aircraft/\n"
        "ENV TARGETFUSE_ONBOARD_MODELS_DIR=/app/models\n"
        'ENTRYPOINT ["targetfuse-onboard"]\n')
    compose = {"services": {"onboard": {
        "build": {"context": ".", "dockerfile": "deploy/onboard.Dockerfile"},
        "image": "targetfuse-onboard",
        "environment": {"TARGETFUSE_ONBOARD_MODEL": "${MODEL:-objects}"}}}}
    found = problems(compose, {"deploy/onboard.Dockerfile": old})
    assert len(found) == 1 and "pair 'objects'" in found[0] and "shallow.json" in found[0]
    # and a build arg naming another pair than the one served fails the real Dockerfile too
    compose["services"]["onboard"]["build"]["args"] = {"MODELS": "vehicle"}
    found = problems(compose)
    assert len(found) == 1 and "objects/shallow.json" in found[0]
    compose["services"]["onboard"]["build"]["args"] = {"MODELS": "objects"}
    assert problems(compose) == []


@pytest.mark.parametrize("role", ["onboard", "ground"])
def test_runtime_files_come_from_the_card(role, tmp_path):
    import json
    import shutil

    for pair in shipped_pairs(role):
        files = runtime_files(pair, role)
        card = json.loads(files[0].read_text())
        assert files[1].name == card["weights"]
        assert not any(f.suffix == ".pt" and role == "onboard" for f in files)
    # A card naming a file that is not there is an error, not a silent gap.
    pair = shipped_pairs(role)[0]
    shutil.copytree(MODELS / pair, tmp_path / pair)
    card_file = runtime_files(pair, role, tmp_path)[0]
    (tmp_path / pair / json.loads(card_file.read_text())["weights"]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        runtime_files(pair, role, tmp_path)

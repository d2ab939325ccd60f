"""Every command the README and the docs show runs as written on a fresh clone, as far as
can be checked offline: each ``targetfuse`` command line parses with the real command line
(sub-command and options exist; ``--help`` of the services is run), each ``make`` target is
in the Makefile, each ``python -m`` module and script exists, each project file a command
reads exists, and each ``curl`` names a route the service on that port has, with a key
unless the route is public. Real-dev data under ``../shared`` (optional, documented as such)
and files a block writes before reading are not required."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from targetfuse import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROJECT_DIRS = ("samples/", "docs/", "models/", "deploy/", "shared/", "benchmarks/", "proto/",
                "onboard/", "ground/", "lab/", "tests/")
# Options whose value a command writes: not required to exist beforehand.
OUTPUTS = {"--out", "--json", "--run", "-o", "--work", "--db"}
# Commands other than the project's that the pages may use (checked for files only).
EXTERNAL = {"docker", "docker-compose", "curl", "rio", "gdal_translate", "export", "awk",
            "sudo", "kubectl", "openssl", "sh", "ip", "tc", "cat", "mkdir", "cd"}
# Modules whose first argument is a folder they write (the key maker).
WRITES_FIRST_ARG = {"shared.api_keys"}
PORTS = {"8080": "onboard", "8181": "onboard", "8182": "onboard", "8183": "onboard",
         "8081": "ground", "8091": "ground", "8092": "ground"}


def blocks(page: Path) -> list[str]:
    """Shell blocks: ```sh/bash, and unlabelled blocks' lines that start with a command."""
    out = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", page.read_text(), re.S):
        if lang in ("sh", "bash", "shell"):
            out.append(body)
        elif lang == "":
            lines = [ln for ln in body.replace("\\\n", " ").splitlines()
                     if re.match(r"\s*(\w+=\S+\s+)*(\.venv/bin/)?targetfuse\b", ln)]
            if lines:
                out.append("\n".join(lines))
    return out


def commands(block: str) -> list[list[str]]:
    """Each simple command of a block, variables it sets substituted, comments dropped."""
    variables: dict[str, str] = {}
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        for name, value in variables.items():
            line = line.replace(f"${{{name}}}", value).replace(f"${name}", value)
        try:
            lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lex.whitespace_split, lex.commenters = True, "#"
            tokens = list(lex)
        except ValueError as exc:
            raise AssertionError(f"cannot parse {line!r}: {exc}") from None
        cmd: list[str] = []
        for tok in [*tokens, ";"]:
            if tok and set(tok) <= set(";&|"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(tok)
        if len(tokens) == 1 and re.match(r"^\w+=", tokens[0]):
            name, value = tokens[0].split("=", 1)
            variables[name] = value
    return out


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def routes() -> dict[str, list[tuple[str, set[str]]]]:
    """Each service's (path regex, methods), from the apps themselves."""
    import tempfile

    from ground.app import create_app as ground_app
    from ground.settings import GroundSettings
    from onboard.app import create_app as onboard_app
    from onboard.settings import OnboardSettings

    tmp = Path(tempfile.mkdtemp())
    apps = {"onboard": onboard_app(OnboardSettings(data_dir=tmp / "o"), start=False),
            "ground": ground_app(GroundSettings(db_path=tmp / "g" / "g.db"))}
    out = {}
    for name, app in apps.items():
        out[name] = [(re.sub(r"\{[^}]+\}", "[^/]+", r.path), set(getattr(r, "methods", ())
                                                                  or {"GET"}))
                     for r in app.routes]
    return out


ROUTES: dict = {}


def check_file(token: str, created: set[str], where: str) -> None:
    path = token.split(":")[0] if re.match(r"[\w./-]+\.json:\w+$", token) else token
    if path in created or path.startswith("../") or "<" in path or "*" in path:
        return
    assert (ROOT / path).exists(), f"{where}: {path} does not exist"


def check_targetfuse(argv: list[str], where: str) -> None:
    offered = {name for name, *_ in cli._offered()}
    assert argv and argv[0] in offered, f"{where}: no command targetfuse {argv[:1]}"
    if argv[0] in cli.SERVICES:
        assert argv[1:] in ([], ["--help"]), f"{where}: the services take no options"
        if argv[1:] == ["--help"]:
            with pytest.raises(SystemExit) as exc:
                cli.main(argv)
            assert exc.value.code == 0, where
        return
    parser = cli.build_parser(argv[0])
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, f"{where}: targetfuse {' '.join(argv)} does not parse"


def check_curl(argv: list[str], created: set[str], where: str) -> None:
    if not ROUTES:
        ROUTES.update(routes())
    url = next((t for t in argv if re.search(r"localhost:\d+", t)), None)
    assert url, f"{where}: curl without a localhost URL"
    port, path = re.search(r"localhost:(\d+)(/[^?\s]*)?", url).groups()
    service = PORTS[port]
    method = "POST" if "-F" in argv or "-d" in argv else "GET"
    path = path or "/"
    ok = [m for rx, m in ROUTES[service] if re.fullmatch(rx, path)]
    assert ok and any(method in m for m in ok), \
        f"{where}: {service} has no {method} {path}"
    if path not in ("/healthz", "/readyz", "/") and not path.startswith("/static/"):
        keyed = any(re.search(r"(Authorization|X-API-Key|\$H\b|\$\{?H\}?)", t) for t in argv) \
            or any("Bearer" in t for t in argv)
        assert keyed, f"{where}: curl {path} carries no key (every route but health needs one)"
    for tok in argv:
        for m in re.finditer(r"(?:^|=)[@<]([^;\s]+)", tok):
            check_file(m.group(1), created, where)


def check_page(page: Path) -> int:
    checked = 0
    for n, block in enumerate(blocks(page)):
        created: set[str] = set()
        for argv in commands(block):
            where = f"{page.relative_to(ROOT)} block {n + 1}: {' '.join(argv)[:80]}"
            while argv and re.match(r"^\w+=", argv[0]):  # VAR=value before a command
                argv = argv[1:]
            if not argv:
                continue
            exe, args = argv[0], argv[1:]
            prev = None
            for tok in args:  # outputs first: a later command may read them
                if prev in OUTPUTS:
                    created.add(tok)
                prev = tok
            if exe in ("rio",) and args[:2] == ["cogeo", "create"]:
                created.add(args[3])
            if args[:1] == ["-m"] and args[1] in WRITES_FIRST_ARG and len(args) > 2:
                created.add(args[2])
            if exe.endswith("targetfuse"):
                check_targetfuse(args, where)
            elif exe == "make":
                assert set(args) <= make_targets(), f"{where}: no make target {args}"
            elif exe.endswith(("python", "python3")):
                if args[:1] == ["-m"]:
                    assert importlib.util.find_spec(args[1]), f"{where}: no module {args[1]}"
                else:
                    check_file(args[0], created, where)
            elif exe == "curl":
                check_curl(args, created, where)
            elif exe.startswith(PROJECT_DIRS):
                check_file(exe, created, where)
            else:
                assert exe in EXTERNAL, f"{where}: unknown command {exe!r}"
            prev = None
            for tok in args:
                value = tok.split("=", 1)[1] if tok.startswith("--") and "=" in tok else tok
                if value.startswith(PROJECT_DIRS) and prev not in OUTPUTS:
                    check_file(value, created, where)
                prev = tok
            checked += 1
    return checked


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_of_the_page_exists_as_written(page):
    check_page(page)


def test_the_readme_is_short_and_its_headline_is_generated():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 120
    from lab.evaluation.report import render
    from lab.experiments.readme import tables

    assert render(text, tables()) == text, "run targetfuse report-readme"
    for page in re.findall(r"\]\((docs/[^)#]+)\)", text):
        assert (ROOT / page).exists(), page


def test_a_wrong_command_file_or_route_is_caught():
    """The checks bite: a made-up sub-command, option, file, route and a keyless curl."""
    cases = {
        "targetfuse plan-contacts --no-such-option 1": "does not parse",
        "targetfuse fly-to-the-moon": "no command",
        'curl -H "$H" -F file=@scene.png localhost:8080/v1/scenes': "scene.png does not exist",
        'curl -H "$H" localhost:8081/v1/nothing': "has no GET /v1/nothing",
        "curl localhost:8081/v1/scenes": "carries no key",
        "make everything": "no make target",
        "open http://localhost:8081/": "unknown command",
    }
    folder = ROOT / "out" / "docs-check"  # a page inside the project: out/ is ignored
    folder.mkdir(parents=True, exist_ok=True)
    for k, (line, message) in enumerate(cases.items()):
        page = folder / f"planted-{k}.md"
        page.write_text(f"```sh\n{line}\n```\n")
        try:
            with pytest.raises(AssertionError, match=re.escape(message)):
                check_page(page)
        finally:
            page.unlink()


def test_every_tier_entry_of_the_conftest_names_tests_that_exist():
    """A renamed test must not silently fall back into the fast tier: each prefix the
    conftest's TIERS lists matches a test file, and a test name when it gives one."""
    import ast

    conftest = (ROOT / "tests" / "conftest.py").read_text()
    tiers = next(ast.literal_eval(n.value) for n in ast.parse(conftest).body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "TIERS")
    for prefixes in tiers.values():
        for prefix in prefixes:
            path, _, name = prefix.partition("::")
            assert (ROOT / path).is_file(), prefix
            if name:
                assert re.search(rf"^def {re.escape(name)}", (ROOT / path).read_text(),
                                 re.M), prefix

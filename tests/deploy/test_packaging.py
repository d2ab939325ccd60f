"""One distribution per deployable: each folder's pyproject.toml lists every package folder
it holds, depends only on the layers below it, and builds a wheel from which its service
starts with nothing else of the project installed (no tooling, no other service)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("shared", "onboard", "ground", "lab")
# The local distributions each may depend on (the import layers, as packages).
ALLOWED = {"shared": set(), "onboard": {"targetfuse-shared"}, "ground": {"targetfuse-shared"},
           "lab": {"targetfuse-shared", "targetfuse-onboard", "targetfuse-ground"}}


def project(folder: str) -> dict:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_its_distribution():
    for folder in FOLDERS:
        base = ROOT / folder
        on_disk = {".".join((folder, *p.parent.relative_to(base).parts))
                   for p in base.rglob("__init__.py") if ".egg-info" not in str(p)}
        assert set(project(folder)["tool"]["setuptools"]["packages"]) == on_disk, folder
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["setuptools"]["packages"] == ["targetfuse"]


def test_the_lab_distribution_carries_the_orbit_data():
    """The constellation commands read the shipped orbit data by default (no ``../shared``):
    the lab's wheel carries every file of it."""
    data = project("lab")["tool"]["setuptools"]["package-data"]["lab.constellation.orbits"]
    folder = ROOT / "lab" / "constellation" / "orbits"
    carried = {p.relative_to(folder).as_posix() for pattern in data for p in folder.glob(pattern)}
    assert {"targets.json", "data/sentinel2.tle", "data/ground_stations.csv",
            "data/PROVENANCE.md"} <= carried


def test_local_dependencies_follow_the_layers_and_only_the_ground_side_has_torch():
    for folder in FOLDERS:
        deps = [d.split("==")[0] for d in project(folder)["project"]["dependencies"]]
        assert {d for d in deps if d.startswith("targetfuse")} == ALLOWED[folder], folder
        assert all("==" in d for d in project(folder)["project"]["dependencies"]), folder
        has_torch = "torch" in deps
        assert has_torch == (folder in ("ground", "lab")), folder


# Imports a distribution may make without declaring them: shared.limits reads a CRS with
# whichever of pyproj (the ground's) and rasterio (onboard's) the service it runs in has;
# shared.uplink.parity runs a new onboard counter with onnxruntime (onboard's; the ground's
# `targetfuse uplink build --onnx` where it is installed, else it says to install it).
OPTIONAL = {"shared": {"pyproj", "rasterio", "onnxruntime"}}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def declared(folder: str) -> set[str]:
    """The distributions ``folder``'s code may import: its own dependencies and, through the
    local distributions it depends on, theirs."""
    local = {"targetfuse-" + f: f for f in FOLDERS}
    names = set()
    for dep in project(folder)["project"]["dependencies"]:
        name = _canonical(dep.split("==")[0].split("[")[0])
        names |= declared(local[name]) if name in local else {name}
    return names


def test_each_distribution_declares_what_its_code_imports():
    grimp = pytest.importorskip("grimp")
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    graph = grimp.build_graph(*FOLDERS, include_external_packages=True)
    for folder in FOLDERS:
        allowed = declared(folder)
        imported = {i.split(".")[0] for m in graph.find_descendants(folder) | {folder}
                    for i in graph.find_modules_directly_imported_by(m)}
        missing = sorted(t for t in imported - set(FOLDERS) - sys.stdlib_module_names
                         - OPTIONAL.get(folder, set())
                         if not {_canonical(d) for d in dists.get(t, [t])} & allowed)
        assert not missing, f"{folder} imports {missing}, which its pyproject.toml lacks"


def build_wheels(folders, tmp: Path) -> Path:
    """Wheels of the given folders, built from copies (the tree stays clean), unpacked into
    one directory: what an image's pip install puts in site-packages."""
    site = tmp / "site"
    for folder in folders:
        src = tmp / "src" / folder
        shutil.copytree(ROOT / folder, src,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "-w", str(tmp / "wheels"), str(src)],
                       check=True, capture_output=True, timeout=300)
    for wheel in (tmp / "wheels").glob("*.whl"):
        zipfile.ZipFile(wheel).extractall(site)
    return site


# Run a service from the unpacked wheels alone: the project's editable installs are taken
# off the import path first (the working directory holds no package).
START = """
import importlib, json, sys
site = sys.argv[1]
def ours(hook):
    return "__editable__" in getattr(hook, "__module__", "")
sys.meta_path[:] = [f for f in sys.meta_path if not ours(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not ours(h)]
sys.path_importer_cache.clear()
sys.path[:] = [site] + [p for p in sys.path if p not in ("", ".")]
absent = []
for name in ("lab", "targetfuse", *sys.argv[3:]):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        absent.append(name)
serve = importlib.import_module(sys.argv[2] + ".serve")
print(json.dumps({"file": serve.__file__, "absent": absent,
                  "torch": "torch" in sys.modules}), flush=True)
serve.main([])  # no command-line arguments: the settings come from the environment
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_from_wheels(tmp: Path, service: str, folders, others, env: dict) -> dict:
    site = build_wheels(folders, tmp)
    port = free_port()
    prefix = f"TARGETFUSE_{service.upper()}_"
    env = {**os.environ, **{prefix + k: v for k, v in env.items()},
           prefix + "HTTP_PORT": str(port), prefix + "MODELS_DIR": str(ROOT / "models")}
    proc = subprocess.Popen([sys.executable, "-c", START, str(site), service, *others],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        facts = json.loads(proc.stdout.readline() or "{}")
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    facts["healthz"] = r.status
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                assert time.time() < deadline, "service did not answer /healthz"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(30)
    return facts


@pytest.mark.slow
def test_the_onboard_service_starts_from_its_own_wheels(tmp_path):
    facts = start_from_wheels(tmp_path, "onboard", ("shared", "onboard"), ("ground",),
                              {"DATA_DIR": str(tmp_path / "data"),
                               "GROUND_TARGET": "127.0.0.1:9"})
    assert facts["file"].startswith(str(tmp_path / "site"))
    assert set(facts["absent"]) == {"lab", "targetfuse", "ground"}
    assert facts["torch"] is False and facts["healthz"] == 200
    # The orbits are the tooling's: the shared wheel holds the contact plan's format alone.
    assert {p.name for p in (tmp_path / "site" / "shared" / "orbits").glob("*.py")} == \
        {"__init__.py", "plan.py"}


@pytest.mark.slow
def test_the_ground_service_starts_from_its_own_wheels(tmp_path):
    pytest.importorskip("torch")
    facts = start_from_wheels(tmp_path, "ground", ("shared", "ground"), ("onboard",),
                              {"DB_PATH": str(tmp_path / "ground.db"), "GRPC_PORT": "0",
                               "THREADS": "1"})
    assert facts["file"].startswith(str(tmp_path / "site"))
    assert set(facts["absent"]) == {"lab", "targetfuse", "onboard"}
    assert facts["healthz"] == 200

"""The import contracts (``[tool.importlinter]`` in pyproject.toml) hold, and a violation
breaks them: a planted upward import, a service importing the other, torch in shared."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("targetfuse", "lab", "onboard", "ground", "shared")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(LINT.parent), "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_tree_keeps_every_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


@pytest.fixture
def copy(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize("module, line, contract", [
    ("shared/imageio.py", "from onboard import settings", "Layers"),
    ("onboard/settings.py", "from ground import store", "Layers"),
    ("ground/store.py", "import lab.simulator", "Layers"),
    ("lab/simulator.py", "from targetfuse import cli", "Layers"),
    ("shared/tile_grid.py", "import torch", "never import torch"),
    ("onboard/intake.py", "import torch.nn", "never import torch"),
    ("shared/pipeline/selection.py", "from shared.pipeline import throttling", "Pipeline"),
    ("shared/pipeline/aggregation.py", "from shared.pipeline import scene", "Pipeline"),
    ("onboard/link/outbox.py", "import onboard.processing", "Onboard service"),
    ("ground/store.py", "from ground import counting", "Ground service"),
    ("onboard/scene_metadata.py", "from onboard import stac_intake", "No cycles"),
    ("lab/evaluation/report.py", "import lab.shipping.ship", "No cycles"),
    ("shared/pipeline/quicklook.py", "from shared.pipeline import scene", "Pipeline"),
])
def test_a_planted_violation_breaks_a_contract(copy, module, line, contract):
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}  # planted\n")
    out = lint(copy)
    assert out.returncode != 0
    broken = [x for x in out.stdout.splitlines() if x.endswith("BROKEN")]
    assert any(contract in x for x in broken), out.stdout[-3000:]


def test_every_package_is_layered_module_by_module():
    """Each package of the tree is the container of an exhaustive layers contract: a new
    module is refused until it is placed (lint-imports then checks every import of it)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    covered = {c for k in contracts if k["type"] == "layers" and k.get("exhaustive")
               for c in k.get("containers", [])}
    packages = {".".join(p.parent.relative_to(ROOT).parts) for name in PACKAGES
                for p in (ROOT / name).rglob("__init__.py")
                if "__pycache__" not in p.parts and ".egg-info" not in str(p)}
    with_modules = {p for p in packages if any(
        f.suffix == ".py" and f.name != "__init__.py" or (f / "__init__.py").exists()
        for f in (ROOT / p.replace(".", "/")).iterdir())}
    assert with_modules - covered == set()

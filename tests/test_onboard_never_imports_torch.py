"""The onboard image ships without torch: onboard/ and shared/ must never import it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_FREE = ("onboard", "shared")


def test_no_torch_import_statement_in_source():
    offenders = []
    for package in TORCH_FREE:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) ==
                      "__import__" and node.args and isinstance(node.args[0], ast.Constant)):
                    names = [str(node.args[0].value)]
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                              for n in names if n.split(".")[0] in ("torch", "torchvision")]
    assert offenders == []


def torch_modules_after_importing(packages: tuple[str, ...]) -> list[str]:
    """Torch modules loaded in a fresh interpreter that imports every module of packages."""
    code = f"""
import importlib, pkgutil, sys
for name in {packages!r}:
    pkg = importlib.import_module(name)
    for mod in pkgutil.walk_packages(pkg.__path__, name + "."):
        if not mod.name.endswith(".__main__"):  # running it would start the service
            importlib.import_module(mod.name)
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] == "torch")))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_importing_every_module_leaves_torch_unloaded():
    assert torch_modules_after_importing(TORCH_FREE) == []


def test_the_check_catches_a_package_that_imports_torch():
    # Guard against a check that cannot fail: the ground package does import torch.
    pytest.importorskip("torch")
    assert "torch" in torch_modules_after_importing(("ground",))

"""The generated wire code is the one proto/generate.py makes from proto/ today."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale(tmp_path):
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools (the dev extra) is not installed")
    sys.path.insert(0, str(ROOT / "proto"))
    try:
        from generate import generate
    finally:
        sys.path.remove(str(ROOT / "proto"))
    fresh = {p.name: p.read_text() for p in generate(tmp_path)}
    checked_in = {p.name: p.read_text() for p in (ROOT / "shared" / "wire").glob("*_pb2*")}
    assert set(fresh) == set(checked_in), "run: python proto/generate.py"
    for name, text in fresh.items():
        assert checked_in[name] == text, f"shared/wire/{name} is stale: python proto/generate.py"

"""Shape rules the architecture issue set for the services' code: no function of the
pipeline, the link or the services takes more than seven positional parameters (beyond
``self``/``cls``); what is past them is keyword-only, so a call names what it passes."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_POSITIONAL = 7


def _positional_counts(root: Path, package: str):
    for path in sorted((root / package).rglob("*.py")):
        if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
            continue  # generated from proto/
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [a.arg for a in node.args.posonlyargs + node.args.args
                         if a.arg not in ("self", "cls")]
                yield f"{path.relative_to(root)}:{node.lineno} {node.name}", len(names)


def test_no_service_function_takes_more_than_seven_positional_parameters():
    wide = [f"{where} ({n})" for package in ("shared", "onboard", "ground")
            for where, n in _positional_counts(ROOT, package) if n > MAX_POSITIONAL]
    assert not wide, "keyword-only beyond seven: " + ", ".join(wide)


def test_the_rule_sees_a_wide_function(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("def f(a, b, c, d, e, f, g, h):\n    pass\n"
                                           "def k(a, *, b, c, d, e, f, g, h):\n    pass\n")
    assert dict(_positional_counts(tmp_path, "pkg")) == {"pkg/m.py:1 f": 8, "pkg/m.py:3 k": 1}

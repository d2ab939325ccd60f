"""The ``targetfuse`` command offers what is installed and dispatches to it."""

import pytest

from targetfuse import cli


def commands(parser) -> set[str]:
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_everything_installed_offers_every_command():
    assert {"data", "onboard", "ground", "demo", "train", "ship", "eval", "calibrate",
            "experiment", "tour"} <= commands(cli.build_parser())


def test_a_service_image_without_the_tooling_offers_only_its_service(monkeypatch, capsys):
    installed = {"onboard", "shared"}  # what the onboard image holds
    monkeypatch.setattr(cli, "_installed", lambda name: name in installed)
    assert commands(cli.build_parser()) == {"onboard"}
    with pytest.raises(SystemExit) as exc:
        cli.main(["train"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("service,module", [("onboard", "onboard.serve"),
                                            ("ground", "ground.serve"),
                                            ("ground-worker", "ground.segment")])
def test_the_service_commands_run_each_service_s_own_entry_point(monkeypatch, service,
                                                                 module):
    import importlib

    serve = importlib.import_module(module)
    calls = []
    monkeypatch.setattr(serve, "main", lambda argv: calls.append((service, argv)) or 0)
    assert cli.main([service, "--x"]) == 0
    assert calls == [(service, ["--x"])]


def test_the_lazy_command_table_is_what_the_modules_define():
    """``targetfuse --help`` lists commands without importing them: the table must name,
    for each, the module that defines it, with the help line that module gives."""
    import argparse
    import importlib

    for name, module, text, _ in cli.LAB_COMMANDS + cli.SERVICE_COMMANDS:
        if name in cli.SERVICES:
            assert callable(importlib.import_module(module).main)
            continue
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_parser(sub)
        assert list(sub.choices) == [name], module
        assert sub._choices_actions[0].help == text, name


@pytest.mark.parametrize("argv", [["--help"], ["onboard", "--help"], ["ground", "--help"],
                                  ["ground-worker", "--help"], ["plan-contacts", "--help"],
                                  ["simulate-day", "--help"]])
def test_help_imports_no_heavy_module(argv):
    """``--help`` is quick: it parses before importing torch, onnxruntime, the web stack or
    the services' apps (measured: 2.3 s of CPU before, 0.06-0.35 s after)."""
    import subprocess
    import sys

    code = ("import sys, runpy; sys.argv = ['targetfuse', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('targetfuse', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'onnxruntime', 'uvicorn', 'fastapi', 'onboard.app',"
            " 'ground.app', 'cv2', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       timeout=120)
    assert "usage:" in r.stdout
    assert "HEAVY []" in r.stderr, r.stderr


@pytest.mark.parametrize("service,prefix", [("onboard", "TARGETFUSE_ONBOARD_"),
                                            ("ground", "TARGETFUSE_GROUND_"),
                                            ("ground-worker", "TARGETFUSE_GROUND_")])
def test_a_service_s_help_lists_every_environment_variable(service, prefix, capsys):
    settings = {"onboard": "onboard.settings:OnboardSettings",
                "ground": "ground.settings:GroundSettings",
                "ground-worker": "ground.settings:GroundSettings"}[service]
    import importlib

    module, cls = settings.split(":")
    fields = getattr(importlib.import_module(module), cls).model_fields
    with pytest.raises(SystemExit) as exc:
        cli.main([service, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in fields:
        assert f"{prefix}{name.upper()}  (default: " in out, name
    with pytest.raises(SystemExit) as exc:  # an unknown option is refused, nothing started
        cli.main([service, "--port", "1"])
    assert exc.value.code == 2 and "unrecognized arguments: --port" in capsys.readouterr().err


def test_bad_input_is_an_error_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["data", "stats", "--data", str(tmp_path / "nowhere"),
                     "--format", "yolo"]) == 2
    assert capsys.readouterr().err.startswith("targetfuse data: error:")

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


@pytest.mark.parametrize("service", ["onboard", "ground"])
def test_the_service_commands_run_each_service_s_own_entry_point(monkeypatch, service):
    import importlib

    serve = importlib.import_module(f"{service}.serve")
    calls = []
    monkeypatch.setattr(serve, "main", lambda: calls.append(service) or 0)
    assert cli.main([service]) == 0
    assert calls == [service]


def test_bad_input_is_an_error_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["data", "stats", "--data", str(tmp_path / "nowhere"),
                     "--format", "yolo"]) == 2
    assert capsys.readouterr().err.startswith("targetfuse data: error:")

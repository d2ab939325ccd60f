"""Intake's metadata checks, without a service: what is refused and how."""

import json

import pytest

from onboard.intake import IntakeError, parse_metadata


@pytest.mark.parametrize("scene_id", ["okid\n", "<b>x</b>", "-leading", "a" * 129, "a/b"])
def test_scene_ids_outside_the_rule_are_refused(scene_id):
    with pytest.raises(IntakeError) as exc:
        parse_metadata(json.dumps({"scene_id": scene_id}))
    assert exc.value.status == 422 and "scene_id" in exc.value.message


def test_a_valid_scene_id_passes():
    assert parse_metadata(json.dumps({"scene_id": "airport-1.v2_a"})).scene_id == \
        "airport-1.v2_a"


def test_metadata_nested_too_deeply_is_a_clear_422():
    with pytest.raises(IntakeError) as exc:
        parse_metadata("[" * 50_000 + "]" * 50_000)
    assert exc.value.status == 422 and "nested too deeply" in exc.value.message

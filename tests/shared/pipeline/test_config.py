"""A pipeline configuration is a JSON file too: written, read back equal, refused when wrong."""

import pytest

from shared.pipeline.config import PipelineConfig


def test_a_configuration_file_round_trips_and_keeps_defaults(tmp_path):
    cfg = PipelineConfig(policy="fixed-conf", conf_q=0.7, qualities=(50, 90), dedup=False)
    assert PipelineConfig.load(cfg.save(tmp_path / "p.json")) == cfg
    (tmp_path / "short.json").write_text('{"uncounted": "zero"}')
    assert PipelineConfig.load(tmp_path / "short.json") == PipelineConfig(uncounted="zero")


@pytest.mark.parametrize("text, words", [
    ("[1, 2]", "JSON object"), ("{nope", "not a pipeline"), ('{"polcy": "value"}', "polcy"),
    ('{"conf_p": 0.9, "conf_q": 0.1}', "conf"), ('{"policy": "best"}', "policy"),
])
def test_a_wrong_configuration_file_is_refused(tmp_path, text, words):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(ValueError, match=words):
        PipelineConfig.load(tmp_path / "p.json")

"""A pipeline configuration an experiment writes, deployed on the onboard service as is,
plans a scene exactly as the experiment's simulator does with it."""

from collections import Counter

import numpy as np
import pytest

from ground.counter import GroundCounter
from lab.simulator import SceneSimulator
from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from onboard.link.outbox import Outbox
from onboard.processing import SceneProcessor
from onboard.scenes_db import ScenesDB
from onboard.settings import OnboardSettings
from shared.imageio import encode
from shared.model_bundle import PairFiles, load_error_model, load_tiling
from shared.pipeline.config import PipelineConfig

# Not the service's defaults: a policy, band and tiling an experiment may choose.
CHOSEN = PipelineConfig(policy="low-conf-first", conf_p=0.05, conf_q=0.8,
                        adaptive_tiling=False, dedup=False, uncounted="zero")


def test_the_settings_deploy_a_configuration_file_as_is(tmp_path):
    path = CHOSEN.save(tmp_path / "pipeline.json")
    assert OnboardSettings(data_dir=tmp_path, pipeline_file=path).pipeline_config() == CHOSEN
    given = OnboardSettings(data_dir=tmp_path, pipeline_file=path, policy="value")
    assert given.pipeline_config().policy == "value"  # a setting given wins over the file
    assert OnboardSettings(data_dir=tmp_path).pipeline_config() == PipelineConfig()
    (tmp_path / "bad.json").write_text('{"policy": "value", "k_maks": 3}')
    with pytest.raises(ValueError, match="k_maks"):
        OnboardSettings(data_dir=tmp_path, pipeline_file=tmp_path / "bad.json")


def test_a_deployed_configuration_gives_the_experiments_numbers(tmp_path):
    scene = generate_scene(SceneConfig(width=768, height=768, gsd_m=0.5, layout="airport",
                                       classes=("aircraft",)), seed=5, image_id="s")
    counter = OnboardCounter.shipped("aircraft")
    files = PairFiles.of("aircraft")
    sim = SceneSimulator(scene, counter, GroundCounter.shipped("aircraft", threads=1),
                         tiling=load_tiling(files).lookup(0.5),
                         error_model=load_error_model(files))
    plan = sim.run(CHOSEN, 0.2, 1.0).plan
    defaults = sim.run(PipelineConfig(), 0.2, 1.0).plan  # what the service did before
    assert list(defaults.decisions.names()) != list(plan.decisions.names())

    settings = OnboardSettings(auth=False, data_dir=tmp_path / "ob", model="aircraft",
                               pipeline_file=CHOSEN.save(tmp_path / "pipeline.json"),
                               budget_fraction=0.2, energy_fraction=1.0, quicklook_px=0)
    png = tmp_path / "s.png"
    png.write_bytes(encode(scene.pixels, ".png"))
    box = Outbox(tmp_path / "o.db")
    result = SceneProcessor(settings, ScenesDB(box), counter).process("s", str(png),
                                                                     {"gsd_m": 0.5})
    box.close()
    names = [n if not r else "reused"
             for n, r in zip(plan.decisions.names(), plan.reused, strict=True)]
    assert result["tile_size"] == plan.tile_size
    assert result["tiles_by_decision"] == dict(sorted(Counter(names).items()))
    assert result["onboard_total"] == pytest.approx(float(np.nansum(plan.onboard)), abs=1e-3)
    assert result["downlink_bytes_planned"] == int(plan.decisions.bytes_used)

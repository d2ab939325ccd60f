"""Exploration on the onboard service plans as the simulator does: the same tiles drawn, the
same decisions, and the outbox's summary and chunks flag exactly those tiles; the setting is
refused out of its range."""

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
from shared.pipeline.decisions import DOWNLINK

SHARE = 0.2  # the most allowed: a 768 px scene explores at all


@pytest.mark.parametrize("bad", [-0.1, 0.25, "nan", "inf"])
def test_the_setting_is_refused_out_of_range(tmp_path, bad):
    with pytest.raises(ValueError, match="exploration_share"):
        OnboardSettings(data_dir=tmp_path, exploration_share=bad)


def test_the_setting_reaches_the_pipeline_and_a_file_keeps_its_own(tmp_path):
    assert OnboardSettings(data_dir=tmp_path).pipeline_config().exploration_share == 0.0
    on = OnboardSettings(data_dir=tmp_path, exploration_share=0.03).pipeline_config()
    assert on.exploration_share == 0.03
    path = PipelineConfig(exploration_share=0.05).save(tmp_path / "p.json")
    assert OnboardSettings(data_dir=tmp_path, pipeline_file=path).pipeline_config() \
        .exploration_share == 0.05


def test_live_planning_explores_the_tiles_the_simulator_explores(tmp_path):
    counter = OnboardCounter.shipped("aircraft", variant="fp32")
    files = PairFiles.of("aircraft")
    cfg = PipelineConfig(exploration_share=SHARE)
    settings = OnboardSettings(auth=False, data_dir=tmp_path / "ob", model="aircraft",
                               precision="fp32", budget_fraction=0.2, energy_fraction=1.0,
                               quicklook_px=0, exploration_share=SHARE)
    assert settings.pipeline_config() == cfg
    box = Outbox(tmp_path / "o.db")
    proc = SceneProcessor(settings, ScenesDB(box), counter)
    ground = GroundCounter.shipped("aircraft", threads=1)
    explored_any = False
    for seed in (5, 6, 7):
        scene = generate_scene(SceneConfig(width=768, height=768, gsd_m=0.5, layout="airport",
                                           classes=("aircraft",)), seed=seed,
                               image_id=f"s{seed}")
        sim = SceneSimulator(scene, counter, ground, tiling=load_tiling(files).lookup(0.5),
                             error_model=load_error_model(files))
        plan = sim.run(cfg, 0.2, 1.0).plan
        png = tmp_path / f"s{seed}.png"
        png.write_bytes(encode(scene.pixels, ".png"))
        result = proc.process(f"s{seed}", str(png), {"gsd_m": 0.5})
        assert result["downlink_bytes_planned"] == int(plan.decisions.bytes_used)
        assert result["exploration"]["tiles"] == np.flatnonzero(
            plan.decisions.explored if plan.decisions.explored is not None else []).tolist()
        assert [t["exploration"] for t in result["per_tile"]].count(True) == \
            len(result["exploration"]["tiles"])
        parts = [p.message for p in box.pending(10_000) if p.scene_id == f"s{seed}"]
        [summary] = [m.summary for m in parts if m.WhichOneof("payload") == "summary"]
        expected = plan.decisions.explored if plan.decisions.explored is not None \
            else np.zeros(len(plan.grid), bool)
        assert [t.exploration for t in summary.tiles] == expected.tolist()
        assert [int(t.decision) for t in summary.tiles if t.exploration] == \
            [2] * int(expected.sum())  # DOWNLINKED
        chunked = {m.chunk.tile_index: m.chunk.exploration for m in parts
                   if m.WhichOneof("payload") == "chunk"}
        assert sorted(chunked) == np.flatnonzero(plan.decisions.action == DOWNLINK).tolist()
        assert {i for i, e in chunked.items() if e} == set(np.flatnonzero(expected).tolist())
        explored_any |= bool(expected.any())
    box.close()
    assert explored_any  # at 20 % some scene of the three draws a tile

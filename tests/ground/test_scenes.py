"""Ground aggregation equals the offline simulator's for the same scene, models and settings."""

import numpy as np
import pytest

from ground.counter import GroundCounter
from ground.counting import count_pending
from ground.link_server import receive
from ground.scenes import scene_report
from ground.store import SQLiteStore
from lab.simulator import SceneSimulator
from lab.synth import SceneConfig, generate_scene
from onboard.counter import OnboardCounter
from shared.pipeline.codec import downlink_pixels, encode_tile
from shared.pipeline.config import PipelineConfig
from shared.pipeline.decisions import DOWNLINK
from shared.pipeline.error_model import ErrorModel
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks
from shared.wire.convert import scene_header, scene_summary

# Counts whole scenes with both shipped counters: the slow tier.
pytestmark = pytest.mark.slow

ERR = ErrorModel([0.05, 0.05, 0.7, 0.01], {"50": [0.1, 0.1], "75": [0.1, 0.09],
                                           "90": [0.1, 0.09]}, 1.3,
                 {"50": 1.03, "75": 1.02, "90": 1.01})


@pytest.mark.parametrize("policy,energy", [("value", 1.0), ("dynamic-conf", 0.6)])
def test_ground_total_equals_the_simulators(tmp_path, policy, energy):
    scene = generate_scene(SceneConfig(width=1536, height=1024, gsd_m=0.5, layout="airport",
                                       classes=("aircraft",)), seed=11)
    on = OnboardCounter.shipped("aircraft", batch_size=8)
    gr = GroundCounter.shipped("aircraft", threads=1)
    sim = SceneSimulator(scene, on, gr, error_model=ERR)
    cfg = PipelineConfig(policy=policy)
    result = sim.run(cfg, 0.2, energy)
    plan = result.plan
    assert (plan.decisions.action == DOWNLINK).any()
    store = SQLiteStore(tmp_path / "g.db")
    msgs = [link_pb2.DownlinkMessage(header=scene_header(
                plan, 0.5, scene.meta.footprint, capture_time=scene.meta.capture_time,
                onboard_model="aircraft/shallow", ground_model="aircraft/deep",
                input_size=on.input_size, policy=policy)),
            link_pb2.DownlinkMessage(summary=scene_summary(plan))]
    for i in np.flatnonzero(plan.decisions.action == DOWNLINK):
        t = plan.grid.tile(int(i))
        sent = downlink_pixels(plan.grid.crop(sim.pixels, int(i)), plan.tile_size,
                               on.input_size)
        data = encode_tile(sent, int(plan.decisions.quality[i]))
        msgs += [link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
            plan.scene_id, int(i), t.row, t.col, data, int(plan.decisions.quality[i]),
            chunk_bytes=4096)]
    for m in msgs[:-1]:
        assert receive(store, m).status in (link_pb2.Ack.COMMITTED, link_pb2.Ack.PARTIAL)
    partial = scene_report(store, plan.scene_id)
    assert partial["complete"] is False
    receive(store, msgs[-1])
    while count_pending(store, gr, ERR, batch=4):
        pass
    report = scene_report(store, plan.scene_id)
    assert report["complete"]
    assert report["total"] == pytest.approx(result.total, abs=1e-3)
    assert report["tiles_by_provenance"] == result.tiles_by_provenance


def test_the_counting_workers_state_says_when_it_fails_or_dies(tmp_path):
    import time

    from ground.counting import CountingWorker

    store = SQLiteStore(tmp_path / "g.db")
    worker = CountingWorker(store, counter=None, idle_s=0.01)
    assert worker.state() == "counting"
    store.close()  # every pass now raises: the store is gone
    worker.start()
    deadline = time.time() + 10
    while worker.state() != "failing" and time.time() < deadline:
        time.sleep(0.02)
    assert worker.state() == "failing" and worker.is_alive()  # it keeps trying
    assert worker.state(stall_s=0.0) == "failing"
    worker.stop()
    worker.join(5)
    assert worker.state() == "dead"

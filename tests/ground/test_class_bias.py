"""The ground corrects a resized tile's count for each class's own bias (the error model's
``class_scale``), the pooled bias for a class without one, and the simulator does the same."""

import numpy as np
import pytest

from ground.counting import count_pending
from ground.link_server import receive
from ground.store import SQLiteStore
from shared.counting import TileCounter
from shared.model_card import ModelCard
from shared.pipeline.codec import encode_tile
from shared.pipeline.error_model import ErrorModel
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks

BIAS = ErrorModel([0.0, 0.0, 1.0, 0.0], {"90": [0.1, 0.1]}, 1.0, {"90": 1.5},
                  class_scale={"vehicle": {"90": 2.0}})


class _TwoClasses(TileCounter):
    """One aircraft and one vehicle on every tile, whatever it shows."""

    def __init__(self):
        self.card = ModelCard(name="t", role="ground", architecture="-", arch_config={},
                              weights="-", sha256="", input_size=64, model_gsd_m=0.5,
                              classes=["aircraft", "vehicle", "ship"], truth_classes=[],
                              flops_per_tile=0)
        self.batch_size = 4

    def run_batch(self, batch):
        n, s = len(batch), self.card.input_size // 4
        dens = np.ones((n, 3, s, s), np.float32) / (s * s)
        return dens, np.zeros_like(dens)


def _scene(store, name, classes):
    header = link_pb2.SceneHeader(
        scene_id=name, grid=link_pb2.TileGrid(width=64, height=64, tile_size=64, rows=1,
                                              cols=1),
        onboard_model="t/shallow", ground_model="t/deep", input_size=64, policy="value",
        classes=classes)
    summary = link_pb2.SceneSummary(scene_id=name, tiles=[link_pb2.TileDecision(
        index=0, decision=link_pb2.DOWNLINKED, quality=90)])
    msgs = [link_pb2.DownlinkMessage(header=header), link_pb2.DownlinkMessage(summary=summary)]
    msgs += [link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
        name, 0, 0, 0, encode_tile(np.full((64, 64, 3), 90, np.uint8), 90), 90,
        resized=True)]
    for m in msgs:
        receive(store, m)


def test_each_class_count_is_corrected_by_its_own_bias(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    _scene(store, "all", [])
    _scene(store, "cars", ["vehicle", "ship"])
    while count_pending(store, _TwoClasses(), BIAS):
        pass
    # aircraft and ship have no bias of their own: the pooled 1.5; vehicles their 2.0.
    assert store.ground_counts("all")[0][0] == pytest.approx(1.5 + 2.0 + 1.5, abs=1e-3)
    assert store.ground_counts("cars")[0][0] == pytest.approx(2.0 + 1.5, abs=1e-3)

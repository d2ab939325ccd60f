"""A ground counter that counts downlinked tiles enlarged (its card's ``detail_gsd_m``):
resized tiles are enlarged to fill its input, scenes without a GSD are taken to be at the
detail GSD, finer scenes are limited to it, and tiles keep the onboard counter's footprint."""

import numpy as np
import pytest

from ground.counting import count_pending, ground_class_counts
from ground.link_server import receive
from ground.store import SQLiteStore
from shared.counting import TileCounter
from shared.model_card import ModelCard
from shared.pipeline.codec import encode_tile
from shared.preprocess import limit_detail
from shared.wire import link_pb2
from shared.wire.chunks import tile_chunks


class _Recorder(TileCounter):
    """A counter whose count of a tile is its share of bright input pixels; keeps inputs."""

    def __init__(self, input_size=128, model_gsd=0.25, detail_gsd=0.5):
        self.card = ModelCard(name="t", role="ground", architecture="-", arch_config={},
                              weights="-", sha256="", input_size=input_size,
                              model_gsd_m=model_gsd, classes=["thing"], truth_classes=[],
                              flops_per_tile=0, detail_gsd_m=detail_gsd)
        self.batch_size = 4
        self.inputs = []

    def run_batch(self, batch):
        self.inputs.append(batch)
        s = self.card.input_size // 4
        lit = (batch.mean(axis=1) > 0).astype(np.float32)[:, None, ::4, ::4]
        return lit[:, :, :s, :s] / (s * s), np.zeros_like(lit[:, :, :s, :s])


def test_a_resized_tile_is_enlarged_to_fill_the_input():
    g = _Recorder()
    tile = np.full((64, 64, 3), 200, np.uint8)  # one onboard input of 64 px
    counts = ground_class_counts(g, tile, None, sent_input=64)
    assert g.inputs[0].shape == (1, 3, 128, 128)
    assert counts[0] == pytest.approx(1.0)  # every input pixel is the tile's: no margin
    ground_class_counts(g, tile, None, sent_input=128)  # a ground input the onboard's size
    assert counts[0] > 0 and float((g.inputs[1].mean(axis=1) > 0).mean()) == pytest.approx(
        0.25)


def test_a_scene_without_gsd_is_cut_as_if_at_the_detail_gsd():
    g = _Recorder()
    assert g.tile_size_for(None) == 64 == g.tile_size_for(0.5)
    assert g.tile_size_for(0.125) == 256
    plain = _Recorder(detail_gsd=None)
    assert plain.tile_size_for(None) == 128


def test_detail_finer_than_the_cards_is_removed_before_counting():
    stripes = np.zeros((256, 256, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes at 0.125 m: nothing of them at 0.5 m
    g = _Recorder()
    g.count_tiles(stripes, 0.125)
    x = np.concatenate(g.inputs)
    assert x.std(axis=(0, 2, 3)).max() < 0.2 * stripes.std()
    assert limit_detail(stripes, 0.5, 0.5) is stripes and limit_detail(stripes, None, 0.5) \
        is stripes


def test_the_service_enlarges_tiles_by_the_headers_onboard_input(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")
    header = link_pb2.SceneHeader(
        scene_id="s1", grid=link_pb2.TileGrid(width=64, height=64, tile_size=64, rows=1,
                                              cols=1),
        onboard_model="t/shallow", ground_model="t/deep", input_size=64, policy="value")
    summary = link_pb2.SceneSummary(scene_id="s1", tiles=[link_pb2.TileDecision(
        index=0, decision=link_pb2.DOWNLINKED, quality=90)])
    data = encode_tile(np.full((64, 64, 3), 200, np.uint8), 90)
    msgs = [link_pb2.DownlinkMessage(header=header), link_pb2.DownlinkMessage(summary=summary)]
    msgs += [link_pb2.DownlinkMessage(chunk=c) for c in tile_chunks(
        "s1", 0, 0, 0, data, 90, resized=True)]
    for m in msgs:
        receive(store, m)
    g = _Recorder()
    assert count_pending(store, g) == 1
    assert g.inputs[0].shape == (1, 3, 128, 128)
    assert store.ground_counts("s1")[0][0] == pytest.approx(1.0, abs=0.01)

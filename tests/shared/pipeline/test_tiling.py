import pytest

from shared.pipeline import tiling


def bowl(best: int):
    calls = []

    def f(s: int) -> float:
        calls.append(s)
        return abs(s - best) / 100 + 0.1
    return f, calls


def test_three_way_search_finds_a_unimodal_optimum_with_few_evaluations():
    f, calls = bowl(600)
    res = tiling.ternary_search(f, 256, 1024, threshold=32)
    assert abs(res.tile_size - 600) <= 32
    full = tiling.exhaustive(bowl(600)[0], list(range(256, 1025, 16)))
    assert res.evaluations[res.tile_size] <= 1.1 * full.evaluations[full.tile_size]
    assert len(set(calls)) <= len(full.evaluations) / 3


def test_search_refuses_bad_intervals():
    with pytest.raises(ValueError):
        tiling.ternary_search(lambda s: 0.0, 512, 256, 16)
    with pytest.raises(ValueError):
        tiling.ternary_search(lambda s: 0.0, 256, 512, 0)


def test_table_round_trip_and_lookup_by_gsd(tmp_path):
    t = tiling.TilingTable("aircraft")
    t.put(tiling.TilingEntry(0.5, 560, 0.16, 0.02, {"560": {"relative_cmae": 0.14}}))
    t.put(tiling.TilingEntry(0.5, 540, 0.15, 0.02))  # replaces the 0.5 m entry
    back = tiling.TilingTable.load(t.save(tmp_path / "tiling.json"))
    assert back.lookup(0.51).tile_size == 540
    assert back.lookup(1.0) is None and back.lookup(None) is None


def test_affordable_size_trades_accuracy_for_coverage():
    entry = tiling.TilingEntry(0.5, 512, 0.15, 0.02, {
        "512": {"relative_cmae": 0.10}, "768": {"relative_cmae": 0.20},
        "1024": {"relative_cmae": 0.60}})
    # 2048 px scene: 16 tiles at 512, 9 at 768, 4 at 1024.
    assert tiling.affordable_size(entry, 512, 2048, 2048, 16) == 512
    assert tiling.affordable_size(entry, 512, 2048, 2048, 9) == 768
    assert tiling.affordable_size(entry, 512, 2048, 2048, 8) == 768  # 0.2 + 1/9 < 0.6
    assert tiling.affordable_size(entry, 512, 2048, 2048, 4) == 1024  # 0.6 < 0.2 + 5/9
    assert tiling.affordable_size(None, 512, 2048, 2048, 1) == 512

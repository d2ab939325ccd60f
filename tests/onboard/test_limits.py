"""What the onboard service sizes from its settings, and the link figures it reports."""

import pytest

from onboard.app import open_seconds
from onboard.link.windows import ContactSchedule
from onboard.settings import OnboardSettings


def test_the_memory_limit_reads_as_compose_writes_it_and_sizes_the_caches():
    s = OnboardSettings(memory_limit_bytes="1g")
    assert s.memory_limit_bytes == 1 << 30
    assert s.gdal_cache() == 64 << 20 and s.revisit_cache() == 128 << 20
    assert s.whole_decode_pixels() == min(s.max_decoded_pixels, (1 << 30) // 16)
    small = OnboardSettings(memory_limit_bytes="512m", gdal_cache_bytes=8 << 20,
                            revisit_cache_bytes=0)
    assert small.memory_limit_bytes == 512 << 20
    assert small.gdal_cache() == 8 << 20 and small.revisit_cache() == 0
    assert small.whole_decode_pixels() == (512 << 20) // 16
    for bad in ("lots", "1t", "12m" * 2):
        with pytest.raises(ValueError):
            OnboardSettings(memory_limit_bytes=bad)
    with pytest.raises(ValueError):
        OnboardSettings(memory_limit_bytes=1 << 20)  # below what the service needs


def test_link_open_time_counts_only_open_windows():
    periodic = ContactSchedule(period_s=100.0, duration_s=10.0)
    assert open_seconds(periodic, 0.0, 1000.0) == pytest.approx(100.0)
    assert open_seconds(periodic, 5.0, 105.0) == pytest.approx(10.0)
    assert open_seconds(periodic, 20.0, 90.0) == 0.0
    explicit = ContactSchedule(windows=((10.0, 20.0), (50.0, 55.0)))
    assert open_seconds(explicit, 0.0, 100.0) == pytest.approx(15.0)
    assert open_seconds(explicit, 15.0, 52.0) == pytest.approx(7.0)
    assert open_seconds(ContactSchedule.always(), 3.0, 10.0) == pytest.approx(7.0)


def test_link_goodput_divides_by_the_time_spent_sending(tmp_path):
    import time

    from onboard.app import Onboard

    # Windows of 10 s every 100 s: 100 s since start held 10 s open.
    settings = OnboardSettings(data_dir=tmp_path, contact_period_s=100.0,
                               contact_duration_s=10.0)
    ob = Onboard(settings)
    now = time.time()  # after start-up, however long a loaded machine made it
    try:
        ob.started = now - (now % 100.0) - 100.0  # exactly one whole period ago
        assert ob.link_state()["goodput_bytes_s"] == 0.0  # nothing sent yet
        ob.link.bytes_sent = 50_000
        ob.link.busy_s = 2.0
        state = ob.link_state()
        open_s = open_seconds(ob.link.schedule, ob.started, time.time())
        assert state["link_open_s"] == pytest.approx(open_s, abs=0.01)
        assert 10.0 <= open_s <= 20.0
        # over the seconds spent sending, not the open time (idle open time is no goodput)
        assert state["link_busy_s"] == 2.0
        assert state["goodput_bytes_s"] == pytest.approx(25_000)
    finally:
        ob.stop()

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


def _intake(tmp_path):
    from onboard.link.outbox import Outbox
    from onboard.scenes_db import ScenesDB
    from onboard.settings import OnboardSettings

    settings = OnboardSettings(data_dir=tmp_path / "onboard")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings, ScenesDB(Outbox(settings.data_dir / "outbox.db"))


def test_concurrent_uploads_of_one_id_keep_the_winners_file(tmp_path, make_image):
    import io
    import threading
    from pathlib import Path

    from onboard.intake import accept

    settings, db = _intake(tmp_path)
    data = make_image(tmp_path / "a.png").read_bytes()
    results, start = [], threading.Barrier(10)

    def submit():
        start.wait()
        try:
            results.append(accept(settings, db, io.BytesIO(data), '{"scene_id": "same"}'))
        except IntakeError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["409"] * 9 + ["same"]
    path = Path(db.db.query("SELECT path FROM scenes WHERE scene_id = 'same'")[0][0])
    assert path.read_bytes() == data
    assert list(path.parent.iterdir()) == [path]


def test_a_jpeg_whose_header_hides_its_size_is_refused_without_decoding(tmp_path):
    import io

    import numpy as np

    from onboard.intake import accept
    from shared.imageio import encode

    settings, db = _intake(tmp_path)
    jpeg = encode(np.zeros((64, 64, 3), np.uint8), ".jpg", 90)
    sof = jpeg.index(b"\xff\xc0")
    stray = jpeg[:sof] + b"\x00" + jpeg[sof:]  # one byte before the frame marker
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(stray), None)
    assert exc.value.status == 400 and "does not state the image size" in exc.value.message
    assert not db.exists("x") and not list((settings.data_dir / "incoming").iterdir())


def test_a_small_jpeg_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    import io
    import struct

    import numpy as np

    from onboard.intake import accept
    from shared.imageio import encode

    settings, db = _intake(tmp_path)
    jpeg = encode(np.zeros((16, 16, 3), np.uint8), ".jpg", 90)
    sof = jpeg.index(b"\xff\xc0")
    bomb = jpeg[:sof + 5] + struct.pack(">HH", 30000, 30000) + jpeg[sof + 9:]
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(bomb), None)
    assert exc.value.status == 413 and "GeoTIFF" in exc.value.message

"""Intake's metadata checks, without a service: what is refused and how."""

import json
from pathlib import Path

import numpy as np
import pytest

from onboard.intake import IntakeError, parse_metadata
from onboard.scene_job import SceneJob, TileRule


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

    settings = OnboardSettings(auth=False, data_dir=tmp_path / "onboard")
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


def test_the_queue_limit_holds_under_concurrent_uploads(tmp_path, make_image):
    import io
    import threading

    from onboard.intake import accept

    settings, db = _intake(tmp_path)
    settings = settings.model_copy(update={"queue_size": 2})
    data = make_image(tmp_path / "a.png").read_bytes()
    results, start = [], threading.Barrier(8)

    def submit(k):
        start.wait()
        try:
            results.append(accept(settings, db, io.BytesIO(data), f'{{"scene_id": "s{k}"}}'))
        except IntakeError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.queued() == 2 and results.count(429) == 6
    kept = list((settings.data_dir / "scenes").rglob("*.png"))
    assert len(kept) == 2  # the refused uploads left no file behind


def test_a_scene_that_keeps_killing_the_service_is_failed_not_retried(tmp_path):
    from onboard.link.outbox import Outbox
    from onboard.scenes_db import MAX_ATTEMPTS, ScenesDB

    path = tmp_path / "o.db"
    db = ScenesDB(Outbox(path))
    db.add(SceneJob("bomb", "x.png", 0, 0), {})
    for _ in range(MAX_ATTEMPTS):
        assert db.claim_next().scene_id == "bomb"
        db = ScenesDB(Outbox(path))  # the process died mid-scene and restarted
    assert db.get("bomb")["state"] == "failed"
    assert "stopped while processing" in db.get("bomb")["error"]
    assert db.claim_next() is None


def test_half_written_uploads_are_removed_at_start(tmp_path):
    from onboard.intake import clear_incoming

    settings, _ = _intake(tmp_path)
    (settings.data_dir / "incoming").mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "incoming" / "tmpabc").write_bytes(b"partial")
    assert clear_incoming(settings) == 1
    assert not list((settings.data_dir / "incoming").iterdir())


@pytest.mark.parametrize("dtypes", [("uint16",) * 3, ("int16",) * 3, ("float32",) * 3,
                                    ("uint8", "uint8", "uint8", "float32")])
def test_geotiffs_the_counter_cannot_read_are_refused_at_intake_with_the_reason(tmp_path,
                                                                               dtypes):
    """16-bit, signed, float and mixed-type multi-band GeoTIFFs: a 415 that says why and how
    to convert, never a 202 followed by a certain failure."""
    import io

    import numpy as np
    import rasterio

    from onboard.intake import accept

    settings, db = _intake(tmp_path)
    path = tmp_path / "odd.tif"
    # GDAL keeps one type per file: a mixed file is written at the widest type, which the
    # check reports (float32 here).
    dtype = np.result_type(*dtypes).name
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=len(dtypes),
                       dtype=dtype) as dst:
        dst.write(np.full((len(dtypes), 32, 32), 100, dtype))
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(path.read_bytes()), None)
    assert exc.value.status == 415 and dtype in exc.value.message
    assert db.queued() == 0 and not list((settings.data_dir / "scenes").glob("*/*"))


def test_a_four_band_8_bit_geotiff_is_accepted_and_read_as_rgb(tmp_path):
    import io

    import numpy as np
    import rasterio

    from onboard.intake import accept
    from onboard.scene_pixels import RasterSource

    settings, db = _intake(tmp_path)
    path = tmp_path / "rgbn.tif"
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=4,
                       dtype="uint8") as dst:
        dst.write(np.stack([np.full((32, 32), v, np.uint8) for v in (10, 20, 30, 40)]))
    sid = accept(settings, db, io.BytesIO(path.read_bytes()), None)
    src = RasterSource(Path(db.claim_next().path))
    assert sid and src[0:2, 0:2].tolist() == [[[10, 20, 30]] * 2] * 2  # NIR left out


def _png_with_garbage_pixels(pixels) -> bytes:
    """A PNG whose header is sound but whose image data is random bytes (CRCs recomputed)."""
    import struct
    import zlib

    from shared.imageio import encode

    good = encode(pixels, ".png")
    out, pos = bytearray(good[:8]), 8
    rng = np.random.default_rng(0)
    while pos < len(good):
        (length,), kind = struct.unpack(">I", good[pos:pos + 4]), good[pos + 4:pos + 8]
        data = good[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            data = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
        out += struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
        pos += 12 + length
    return bytes(out)


def test_pngs_and_jpegs_whose_pixels_do_not_decode_are_refused_at_intake(tmp_path):
    import io

    from onboard import decodable
    from onboard.intake import accept
    from shared.imageio import encode

    settings, db = _intake(tmp_path)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    good = encode(pixels, ".png")
    flipped = bytearray(good)
    flipped[60] ^= 0xFF  # inside the image data: its CRC no longer holds
    jpeg = encode(pixels, ".jpg")
    no_scan = jpeg[:jpeg.index(b"\xff\xda")] + b"\xff\xd9"  # header and end, no pixels
    for bad, why in ((_png_with_garbage_pixels(pixels), "corrupt"), (bytes(flipped), "CRC"),
                     (no_scan, "cannot be decoded")):
        with pytest.raises(IntakeError) as exc:
            accept(settings, db, io.BytesIO(bad), None)
        assert exc.value.status == 400 and why in exc.value.message
    assert db.queued() == 0 and not list((settings.data_dir / "scenes").glob("*/*"))
    assert accept(settings, db, io.BytesIO(good), None)
    from PIL import Image

    for size in ((80, 64), (7, 5), (1, 1)):  # the exact-length check knows Adam7 too
        for mode in ("RGB", "L", "RGBA"):
            path = tmp_path / f"{mode}{size}.png"
            Image.fromarray(pixels[:size[1], :size[0]]).convert(mode).save(path, interlace=1)
            decodable.check_png(path)


def test_a_damaged_jpeg_is_refused_exactly_when_the_worker_could_not_decode_it(tmp_path):
    """The 1/8-scale check agrees with the full decode the worker does."""
    import cv2

    from onboard import decodable
    from shared.imageio import encode

    pixels = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    jpeg = encode(pixels, ".jpg")
    sos = jpeg.index(b"\xff\xda") + 14
    for name, data in (("whole", jpeg), ("no scan", jpeg[:sos - 14] + b"\xff\xd9"),
                       ("zeroed scan", jpeg[:sos] + bytes(len(jpeg) - sos - 2) + b"\xff\xd9")):
        path = tmp_path / "x.jpg"
        path.write_bytes(data)
        worker_can = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
        try:
            decodable.check_jpeg(path)
            refused = False
        except decodable.Undecodable:
            refused = True
        assert refused == (not worker_can), name


def test_error_texts_carry_no_server_paths():
    from shared.errors import public

    text = public(OSError("'/srv/onboard/incoming/tmpq1' not recognized; see "
                          "/io/opencv/modules/imgcodecs/src/loadsave.cpp:77"))
    assert "/srv" not in text and "/io/opencv" not in text and "<path>" in text


def test_a_clean_stop_does_not_use_up_an_attempt(tmp_path):
    from onboard.link.outbox import Outbox
    from onboard.scenes_db import MAX_ATTEMPTS, ScenesDB

    path = tmp_path / "o.db"
    db = ScenesDB(Outbox(path))
    db.add(SceneJob("long", "x.png", 0, 0), {})
    for _ in range(MAX_ATTEMPTS + 2):
        assert db.claim_next().scene_id == "long"
        assert db.release_unfinished() == 1  # stopped cleanly mid-scene
        db = ScenesDB(Outbox(path))
    assert db.get("long")["state"] == "queued"


def test_a_scene_cut_into_more_tiles_than_the_link_carries_is_refused_at_intake(tmp_path):
    import io

    from onboard.intake import accept
    from shared.imageio import encode
    from shared.tile_grid import MAX_TILES

    settings, db = _intake(tmp_path)
    png = encode(np.zeros((4000, 4000, 3), np.uint8), ".png")
    rule = TileRule(input_size=32, model_gsd_m=0.05)  # 16 px tiles at 0.1 m, 32 unknown

    with pytest.raises(IntakeError) as exc:  # 250 x 250 tiles
        accept(settings, db, io.BytesIO(png), json.dumps({"gsd_m": 0.1}), None, rule)
    assert exc.value.status == 413 and str(MAX_TILES) in exc.value.message
    assert db.queued() == 0
    assert accept(settings, db, io.BytesIO(png), None, None, rule)  # 15,625 tiles
    assert db.claim_next().tiles == 125 * 125


def _big(tmp_path, name: str, **kw):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), (800, 600))
    path = tmp_path / name
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if kw.get("progressive") else []
    cv2.imwrite(str(path), img, params)
    return path


def _tight(tmp_path):
    settings, db = _intake(tmp_path)
    # A 64 MiB limit decodes at most 64 MiB / 16 = 4.2 Mpx whole; the test images are
    # 0.48 Mpx, so the limit is lowered further by max_decoded_pixels.
    return settings.model_copy(update={"memory_limit_bytes": 64 << 20,
                                       "max_decoded_pixels": 100_000}), db


def test_a_progressive_jpeg_too_large_to_decode_whole_is_refused_with_why(tmp_path):
    import io

    from onboard.intake import accept

    settings, db = _tight(tmp_path)
    path = _big(tmp_path, "p.jpg", progressive=True)
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(path.read_bytes()), None)
    assert exc.value.status == 413
    assert "progressive" in exc.value.message and "GeoTIFF" in exc.value.message
    assert db.queued() == 0 and not list((settings.data_dir / "scenes").rglob("*.jpg"))


def test_a_baseline_jpeg_or_plain_png_over_that_size_is_accepted_for_strip_decoding(
        tmp_path):
    import io

    import cv2

    from onboard.intake import accept

    settings, db = _tight(tmp_path)
    jpg = _big(tmp_path, "b.jpg")
    png = tmp_path / "b.png"
    cv2.imwrite(str(png), cv2.imread(str(jpg)))
    for path in (jpg, png):
        accept(settings, db, io.BytesIO(path.read_bytes()), None)
    assert db.queued() == 2


def test_an_interlaced_png_too_large_to_decode_whole_is_refused(tmp_path):
    import io
    import zlib

    import cv2

    from onboard.intake import accept

    settings, db = _tight(tmp_path)
    png = tmp_path / "i.png"
    cv2.imwrite(str(png), cv2.imread(str(_big(tmp_path, "b.jpg"))))
    data = bytearray(png.read_bytes())
    data[28] = 1  # the IHDR's interlace method: Adam7 (header only: refused before decoding)
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    with pytest.raises(IntakeError) as exc:
        accept(settings, db, io.BytesIO(bytes(data)), None)
    assert exc.value.status == 413 and "interlaced" in exc.value.message
    assert "GeoTIFF" in exc.value.message


def test_a_scene_queued_before_jobs_were_resolved_is_resolved_when_claimed(tmp_path):
    """A store from before the intake resolved jobs: the scene's job is made from its
    record when claimed (unsized: the worker sizes it by the same rule)."""
    settings, db = _intake(tmp_path)
    db.add(SceneJob("old", "x.png", 0, 0), {"gsd_m": 0.5, "width": 640, "height": 480,
                                           "format": "png", "classes": ["ship"]})
    db.db.execute("UPDATE scenes SET job = NULL")
    job = db.claim_next()
    assert (job.scene_id, job.gsd_m, job.gsd_source, job.classes) == ("old", 0.5, "metadata",
                                                                      ["ship"])
    assert (job.width, job.height, job.tile_size) == (640, 480, None)
    assert job.sized(TileRule(256, 0.5)).tiles == 6

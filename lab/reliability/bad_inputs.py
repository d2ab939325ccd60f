"""Bad inputs against running services: every one a clear 4xx (or a REJECTED with its
reason on the link), nothing of it left behind, and the services still working after.

Both services run live on loopback (``lab.services.live.Service``, authentication on). The onboard
REST intake gets corrupt, truncated, oversized, decompression-bomb and wrong-type images,
malformed metadata and numbers no scene has (``shared.limits``); the ground's link gets
malformed and hostile parts from an authenticated sender (an empty or bomb tile, random
bytes, an unknown decision, a part for another satellite's scene, a script for a scene id, a
summary far too long, counts of inf or 1e308, unknown CRSs, a 1e300 geotransform, a tile
whose counting would cost thousands of inputs). Afterwards: no upload
file, scene row, stored part or partial chunk of any of them remains; a good scene still goes
through; the ground's counting worker is still counting. Part of ``lab.reliability.faults``'s suite.
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

import grpc
import numpy as np

from lab.services.live import Service, get_json
from shared.api_keys import Credentials
from shared.imageio import encode
from shared.wire import link_pb2, link_pb2_grpc
from shared.wire.tls import channel_credentials

_PATHLIKE = ("/tmp", "/work", "/home", "site-packages", ".py")
OVERSIZED = "upload over the size limit (2 MiB over it)"


def _multipart(file: bytes, metadata: str | None) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    parts = []
    if metadata is not None:
        parts.append(f'--{b}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
                     f"{metadata}\r\n".encode())
    parts += [f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
              "Content-Type: application/octet-stream\r\n\r\n".encode(), file,
              f"\r\n--{b}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={b}"


def _post(url: str, key: str, file: bytes, metadata: str | None) -> tuple[int, str]:
    body, ctype = _multipart(file, metadata)
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": ctype, "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post_expecting(url: str, key: str, file: bytes, metadata: str | None) -> tuple[int, str]:
    """The upload announced with ``Expect: 100-continue`` (as curl sends large bodies): the
    service may answer from the headers alone, before any body byte is sent, as it does for
    a declared length over its limit. (A client that sends the body anyway sees the
    connection closed under it once the 413 is out, as with any server refusing early.)"""
    import http.client
    from urllib.parse import urlsplit

    body, ctype = _multipart(file, metadata)
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("POST", u.path)
        for k, v in (("Content-Type", ctype), ("Content-Length", str(len(body))),
                     ("Authorization", f"Bearer {key}"), ("Expect", "100-continue")):
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _png_chunks(png: bytes, replace) -> bytes:
    out, pos = bytearray(png[:8]), 8
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        data = replace(kind, png[pos + 8:pos + 8 + length])
        out += struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
        pos += 12 + length
    return bytes(out)


def _tiff(path: Path, dtype: str, count: int = 3) -> bytes:
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=count,
                       dtype=dtype) as dst:
        dst.write(np.full((count, 64, 64), 7, dtype))
    return path.read_bytes()


def uploads(folder: Path, limit_bytes: int) -> list[tuple[str, bytes, str | None]]:
    """(what, file bytes, metadata text) of each bad upload, for an intake that takes at
    most ``limit_bytes``."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    png, jpeg = encode(pixels, ".png"), encode(pixels, ".jpg")
    sof = jpeg.index(b"\xff\xc0")
    folder.mkdir(parents=True, exist_ok=True)
    ok = json.dumps({"gsd_m": 0.5})
    return [
        ("empty file", b"", ok),
        ("random bytes", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), ok),
        ("truncated PNG", png[: len(png) // 2], ok),
        ("PNG with garbage image data", _png_chunks(png, lambda k, d: rng.integers(
            0, 256, len(d), dtype=np.uint8).tobytes() if k == b"IDAT" else d), ok),
        ("PNG declaring 60000 x 60000 px", _png_chunks(png, lambda k, d: struct.pack(
            ">II", 60000, 60000) + d[8:] if k == b"IHDR" else d), ok),
        ("JPEG declaring 30000 x 30000 px", jpeg[:sof + 5] + struct.pack(">HH", 30000, 30000)
         + jpeg[sof + 9:], ok),
        ("JPEG with a stray byte before its frame marker", jpeg[:sof] + b"\x00" + jpeg[sof:],
         ok),
        ("truncated JPEG", jpeg[: len(jpeg) // 2], ok),
        ("16-bit GeoTIFF", _tiff(folder / "u16.tif", "uint16"), ok),
        ("float GeoTIFF", _tiff(folder / "f32.tif", "float32"), ok),
        ("truncated GeoTIFF", _tiff(folder / "u8.tif", "uint8")[:300], ok),
        ("metadata not JSON", png, "{gsd: 0.5"),
        ("metadata nested 50,000 deep", png, "[" * 50_000 + "]" * 50_000),
        ("metadata with an unknown field", png, json.dumps({"gsd": 0.5})),
        ("scene id with a newline", png, json.dumps({"scene_id": "okid\n"})),
        ("scene id that is a script", png, json.dumps({"scene_id": "<img src=x onerror=1>"})),
        ("negative GSD", png, json.dumps({"gsd_m": -1})),
        ("a GSD of 1e-9 m/px", png, json.dumps({"gsd_m": 1e-9})),
        ("a GSD of 2.68e-06 m/px", png, json.dumps({"gsd_m": 2.68e-06})),
        ("NaN for a GSD", png, '{"gsd_m": NaN}'),
        ("a geotransform of 1e300", png, json.dumps({"geotransform": [1e300, 0.5, 0, 0, 0,
                                                                      -0.5]})),
        ("a CRS PROJ does not know (EPSG:999999)", png, json.dumps({
            "geotransform": [0, 0.5, 0, 0, 0, -0.5], "crs": "EPSG:999999"})),
        ("a STAC Item with a bbox of NaN", png, _stac_nan_bbox()),
        ("a class the counter does not count", png, json.dumps({"classes": ["tank"]})),
        (OVERSIZED, png + b"\x00" * (limit_bytes + (2 << 20)), ok),
    ]


def _stac_nan_bbox() -> str:
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "nan-bbox",
            "geometry": None, "properties": {"datetime": "2024-05-01T10:00:00Z",
                                             "gsd": 0.5},
            "links": [], "assets": {}, "bbox": [0, 0, 1, 1]}
    return json.dumps(item).replace("[0, 0, 1, 1]", "[NaN, NaN, NaN, NaN]")


def _header(scene_id: str, rows: int = 1, cols: int = 2, **extra) -> link_pb2.DownlinkMessage:
    h = link_pb2.SceneHeader(scene_id=scene_id, grid=link_pb2.TileGrid(
        width=256 * cols, height=256 * rows, tile_size=256, rows=rows, cols=cols))
    footprint = extra.pop("footprint", None)
    for k, v in extra.items():
        setattr(h, k, v)
    if footprint is not None:
        h.footprint.CopyFrom(link_pb2.Footprint(geotransform=footprint[0], crs=footprint[1]))
    return link_pb2.DownlinkMessage(header=h)


def _summary(scene_id: str, counts, class_counts=None) -> link_pb2.DownlinkMessage:
    tiles = [link_pb2.TileDecision(index=i, decision=link_pb2.ACCEPTED, onboard_count=c)
             for i, c in enumerate(counts)]
    for t, cc in zip(tiles, class_counts or [], strict=False):
        t.class_counts.append(cc)
    return link_pb2.DownlinkMessage(summary=link_pb2.SceneSummary(scene_id=scene_id,
                                                                  tiles=tiles))


def _chunk(scene_id: str, data: bytes, index: int = 0, sent_gsd_m: float = 0.0,
           resized: bool = False) -> link_pb2.DownlinkMessage:
    return link_pb2.DownlinkMessage(chunk=link_pb2.TileChunk(
        scene_id=scene_id, tile_index=index, row=0, col=index, codec=link_pb2.JPEG,
        quality=90, sha256=hashlib.sha256(data).digest(), total_size=len(data), offset=0,
        data=data, decision=link_pb2.DOWNLINKED, sent_gsd_m=sent_gsd_m, resized=resized))


def wire_parts() -> list[tuple[str, str, list[link_pb2.DownlinkMessage]]]:
    """(what, scene id, messages): the last message of each is the bad part."""
    bomb = bytearray(encode(np.zeros((16, 16, 3), np.uint8), ".jpg"))
    sof = bytes(bomb).index(b"\xff\xc0")
    bomb[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    noise = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    summary = link_pb2.SceneSummary(scene_id="w-dec", tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.DECISION_UNSPECIFIED)
        for i in range(2)])
    long_summary = link_pb2.SceneSummary(scene_id="w-long", tiles=[
        link_pb2.TileDecision(index=i, decision=link_pb2.ACCEPTED) for i in range(150_000)])
    return [
        ("a tile of 0 bytes", "w-empty", [_header("w-empty"), _chunk("w-empty", b"")]),
        ("a tiny JPEG declaring 60000 x 60000 px", "w-bomb",
         [_header("w-bomb"), _chunk("w-bomb", bytes(bomb))]),
        ("a tile of random bytes", "w-noise", [_header("w-noise"), _chunk("w-noise", noise)]),
        ("a summary with an unspecified decision", "w-dec",
         [_header("w-dec"), link_pb2.DownlinkMessage(summary=summary)]),
        ("a summary of 150,000 tiles", "w-long",
         [_header("w-long"), link_pb2.DownlinkMessage(summary=long_summary)]),
        ("a grid of 1000 x 1000 tiles", "w-grid", [_header("w-grid", 1000, 1000)]),
        ("a script for a scene id", "<img src=x onerror=alert(1)>",
         [_header("<img src=x onerror=alert(1)>")]),
        ("a summary for another satellite's scene", "w-theirs",
         [_summary("w-theirs", [1.0, 1.0])]),
        ("a summary with onboard_count = inf", "w-inf",
         [_header("w-inf"), _summary("w-inf", [float("inf"), 1.0])]),
        ("a summary with 1e308 on two tiles", "w-big",
         [_header("w-big"), _summary("w-big", [1e308, 1e308])]),
        ("a summary with class_counts inf", "w-cinf",
         [_header("w-cinf"), _summary("w-cinf", [1.0, 1.0], [float("inf"), 1.0])]),
        ("a header with a GSD of 1e-9", "w-gsd", [_header("w-gsd", gsd_m=1e-9)]),
        ("a header with CRS EPSG:999999", "w-crs",
         [_header("w-crs", footprint=([0, 0.5, 0, 0, 0, -0.5], "EPSG:999999"))]),
        ("a header with CRS EPSG:0", "w-crs0",
         [_header("w-crs0", footprint=([0, 0.5, 0, 0, 0, -0.5], "EPSG:0"))]),
        ("a header with a 1e300 geotransform", "w-gt",
         [_header("w-gt", footprint=([1e300, 0.5, 0, 1e300, 0, -0.5], "EPSG:32631"))]),
        ("a native tile at 64 m/px (thousands of counter inputs)", "w-cost",
         [_header("w-cost"), _chunk("w-cost", encode(np.random.default_rng(2).integers(
             0, 256, (256, 256, 3), dtype=np.uint8), ".jpg"), sent_gsd_m=64.0)]),
    ]


def play_uploads(url: str, key: str, folder: Path, limit_bytes: int
                 ) -> tuple[list[dict], int]:
    """Each of ``uploads`` posted to an onboard intake at ``url``: its case (clear: a 4xx
    with a reason that shows no path), and the 5xx answers."""
    cases, server_errors = [], 0
    for what, data, meta in uploads(folder, limit_bytes):
        post = _post_expecting if what == OVERSIZED else _post
        status, text = post(url, key, data, meta)
        detail = json.loads(text).get("detail", "") if text.startswith("{") else ""
        server_errors += status >= 500
        cases.append({"interface": "onboard REST", "input": what, "status": status,
                      "clear_4xx": 400 <= status < 500 and bool(detail) and not any(
                          p in str(detail) for p in _PATHLIKE)})
    return cases, server_errors


def play_wire_parts(grpc_port: int, keys: Credentials, other_key: str) -> list[dict]:
    """Each of ``wire_parts`` sent to a link end by an authenticated satellite (the one of
    ``keys``), after the satellite known by ``other_key`` started "w-theirs": its case
    (clear: REJECTED with a reason)."""
    channel = grpc.secure_channel(f"127.0.0.1:{grpc_port}", channel_credentials(keys.tls.ca))
    stub = link_pb2_grpc.DownlinkStub(channel)
    sat = (("authorization", f"Bearer {keys.satellite_file.read_text().strip()}"),)
    # The other satellite starts "w-theirs" first: this one's header for it is forged.
    list(stub.Send(iter([_header("w-theirs")]), timeout=30,
                   metadata=(("authorization", f"Bearer {other_key}"),)))
    cases = []
    try:
        for what, _, msgs in wire_parts():
            for seq, m in enumerate(msgs, 1):
                m.seq = seq
            acks = list(stub.Send(iter(msgs), timeout=60, metadata=sat))
            last = acks[-1]
            cases.append({"interface": "ground link", "input": what,
                          "status": link_pb2.Ack.Status.Name(last.status),
                          "clear_4xx": last.status == link_pb2.Ack.REJECTED and
                          bool(last.error)})
    finally:
        channel.close()
    return cases


def broken_routes(ground_url: str, rest_key: str, listing: dict | None) -> int:
    """How many of each listed scene's routes (report, STAC Item, tiles GeoJSON) answer a
    5xx."""
    broken = 0
    for row in (listing or {}).get("scenes", []):
        for route in ("", "/stac", "/tiles.geojson"):
            try:
                get_json(f"{ground_url}/v1/scenes/{row['key']}{route}", rest_key)
            except urllib.error.HTTPError as exc:
                broken += exc.code >= 500
    return broken


def run_bad_inputs(folder: Path) -> dict:
    from ground.app import create_app as ground_app
    from ground.settings import GroundSettings
    from onboard.app import create_app as onboard_app
    from onboard.settings import OnboardSettings

    keys = Credentials.make(folder / "keys")
    other = folder / "keys" / "link-keys"
    other.write_text(other.read_text() + f"satellite-2 {'o' * 32}\n")
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0, threads=1,
                                      model="aircraft", db_path=folder / "g.db",
                                      **keys.ground()))
    ground = Service(g_app)
    g_port = ground.start()
    o_settings = OnboardSettings(data_dir=folder / "onboard", model="aircraft",
                                 ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
                                 max_upload_bytes=1 << 20, **keys.onboard())
    onboard = Service(onboard_app(o_settings))
    o_port = onboard.start()
    try:
        url = f"http://127.0.0.1:{o_port}/v1/scenes"
        cases, server_errors = play_uploads(url, keys.rest_key, folder / "inputs",
                                            o_settings.max_upload_bytes)
        cases += play_wire_parts(g_app.state.grpc_port, keys, "o" * 32)
        # Still working: a good scene goes through, the ground still counts and lists.
        good, text = _post(url, keys.rest_key, encode(np.random.default_rng(3).integers(
            0, 256, (512, 512, 3), dtype=np.uint8), ".png"), json.dumps({"scene_id": "good",
                                                                          "gsd_m": 0.5}))
        ready = get_json(f"http://127.0.0.1:{g_port}/readyz")
        listing = get_json(f"http://127.0.0.1:{g_port}/v1/scenes", keys.rest_key)
        # Every scene's every route still answers (none a 5xx after the numbers sent).
        broken = broken_routes(f"http://127.0.0.1:{g_port}", keys.rest_key, listing)
        routes_ok, server_errors = listing is not None and not broken, server_errors + broken
    finally:
        onboard.stop()
        ground.stop()
    import sqlite3

    with sqlite3.connect(folder / "onboard" / "onboard.db") as o:
        rows = [r[0] for r in o.execute("SELECT scene_id FROM scenes")]
    left = [p for p in (folder / "onboard" / "incoming").glob("*")] + \
        [p for p in (folder / "onboard" / "scenes").rglob("*") if p.is_file()
         and "good" not in p.parts]
    with sqlite3.connect(folder / "g.db") as g:
        # What the bad parts left in the ground's store; the good scene's own parts may
        # have gone down before the services stopped (a loaded machine gives it the time).
        stored = sum(g.execute(f"SELECT COUNT(*) FROM {table} WHERE scene_id NOT IN "
                               f"('good', 'satellite-1:good'){extra}").fetchone()[0]
                     for table, extra in (("tiles", ""), ("chunks", ""),
                                          ("scenes", " AND summary IS NOT NULL")))
        theirs = g.execute("SELECT sender FROM scenes WHERE name = 'w-theirs' AND summary "
                           "IS NULL").fetchall()
    return {"cases": cases, "server_errors": server_errors,
            "left_behind": len(left) + len([r for r in rows if r != "good"]) + stored,
            "left_behind_by_place": {"onboard files": [p.name for p in left],
                                     "onboard scenes": [r for r in rows if r != "good"],
                                     "ground rows": stored},
            "good_scene_accepted": good == 202,
            "ground_still_counting": bool(ready and ready.get("status") == "ready"),
            "ground_lists_scenes": listing is not None,
            "forged_scene_kept_its_owner": [r[0] for r in theirs] == ["satellite-2"],
            "ground_routes_answer": routes_ok}

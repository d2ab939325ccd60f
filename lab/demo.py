"""``targetfuse demo``: the whole system live on this machine, embedded defaults.

Starts the ground service (gRPC link end, counting worker, REST + dashboard, SQLite) and the
onboard service (REST intake, ONNX counter, SQLite outbox, rate-limited link) on loopback,
ports chosen at run time; submits a synthetic airport scene generated on the fly and, when
the real development data are present, three held-out Airbus validation scenes; waits until
the ground has counted every downlinked tile; prints a table per scene. With ``--keep`` the
services stay up and it prints the dashboard URL.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from lab.data.realdev import add_real_dev_option
from lab.live import Service, get_json, post_scene
from shared.imageio import encode


def sample_scenes(real_dev: str | None):
    """(scene id, pixels, gsd, truth) for the synthetic scene and, when present, 3 Airbus
    validation scenes."""
    from lab.synth import SceneConfig, generate_scene

    synth = generate_scene(SceneConfig(width=2048, height=2048, gsd_m=0.5, layout="airport",
                                       classes=("aircraft",)), seed=7, image_id="synthetic")
    out = [("synthetic-airport", synth.load_pixels(), 0.5, len(synth.objects))]
    try:
        from lab.data.realdev import load_real
        from lab.evaluation.evaluate import truth_objects

        ds = load_real("airbus_aircraft", real_dev)
    except (FileNotFoundError, NotADirectoryError, OSError):
        return out
    from shared.paths import PROJECT_ROOT

    val = json.loads((PROJECT_ROOT / "models/splits/airbus_aircraft.json").read_text())["val"]
    for img in [i for i in ds.images if i.image_id in set(val)][:3]:
        truth = len(truth_objects(img, {"Airplane", "Truncated_airplane"}, 0.3)[0])
        out.append((f"airbus-{img.image_id[:8]}", img.load_pixels(), 0.5, truth))
    return out


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job: both services live, sample scenes")
    p.add_argument("--out", default="out/demo", help="where the services keep their data")
    add_real_dev_option(p)
    p.add_argument("--budget-fraction", type=float, default=0.10)
    p.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    p.set_defaults(func=lambda a: run(a.out, a.real_dev, keep=a.keep,
                                      budget_fraction=a.budget_fraction))


def run(out: str | Path = "out/demo", real_dev: str | None = None, keep: bool = False,
        budget_fraction: float = 0.10, timeout_s: float = 600.0) -> int:
    from ground.app import create_app as ground_app
    from ground.settings import GroundSettings
    from onboard.app import create_app as onboard_app
    from onboard.counter import OnboardCounter
    from onboard.settings import OnboardSettings

    out = Path(out)
    for sub in ("ground", "onboard"):
        shutil.rmtree(out / sub, ignore_errors=True)
    print("targetfuse demo: both services on this machine (SQLite, loopback link, shipped "
          "models)")
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0,
                                      db_path=out / "ground" / "ground.db", threads=2))
    ground = Service(g_app)
    g_port = ground.start()
    dashboard = f"http://127.0.0.1:{g_port}/"
    o_settings = OnboardSettings(data_dir=out / "onboard",
                                 ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
                                 budget_fraction=budget_fraction,
                                 link_rate_bytes_s=2_000_000)
    onboard = Service(onboard_app(o_settings))
    o_port = onboard.start()
    print(f"  ground: dashboard {dashboard}, gRPC 127.0.0.1:{g_app.state.grpc_port}")
    print(f"  onboard: REST http://127.0.0.1:{o_port}/v1/scenes, link "
          f"{o_settings.link_rate_bytes_s / 1e6:.1f} MB/s, downlink budget "
          f"{budget_fraction:.0%} of raw tile bytes per scene")
    try:
        counter = OnboardCounter.shipped(o_settings.model)
        rows = []
        scenes = sample_scenes(real_dev)
        for sid, pixels, gsd, _ in scenes:
            post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(pixels, ".png"),
                       {"scene_id": sid, "gsd_m": gsd})
            print(f"  submitted {sid} ({pixels.shape[1]}x{pixels.shape[0]} px)")
        deadline = time.time() + timeout_s
        for sid, pixels, gsd, truth in scenes:
            while True:
                ob = get_json(f"http://127.0.0.1:{o_port}/v1/scenes/{sid}")
                gr = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/{sid}") \
                    if ob["state"] in ("downlinking", "delivered") else None
                if ob["state"] == "failed":
                    raise RuntimeError(f"{sid} failed onboard: {ob['error']}")
                if gr and gr.get("complete"):
                    break
                if time.time() > deadline:
                    raise TimeoutError(f"{sid} not complete after {timeout_s} s")
                time.sleep(0.2)
            only = counter.count(pixels, gsd).outputs.total
            res = ob["result"]
            rows.append((sid, truth, only, gr["total"], gr["tiles_by_provenance"],
                         ob["downlink"]["bytes_sent"], res["energy_j"]["total"]))
        _print_table(rows)
        if keep:
            print(f"\n  dashboard: {dashboard}  (Ctrl-C to stop)")
        else:  # the services stop with the demo: a URL printed now would lead nowhere
            print("\n  services stopped; to browse the dashboard, run "
                  "`.venv/bin/targetfuse demo --keep`")
        if keep:
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        onboard.stop()
        ground.stop()
    return 0


def _print_table(rows) -> None:
    print(f"\n  {'scene':20s} {'truth':>6s} {'onboard-only':>12s} {'final':>7s}  "
          f"{'acc/down/reuse/disc/unc':>24s} {'bytes sent':>10s} {'energy J':>8s}")
    errs_on, errs_final = [], []
    for sid, truth, only, final, prov, sent, joules in rows:
        tiles = "/".join(str(prov.get(k, 0)) for k in
                         ("accepted", "downlinked", "reused", "discarded", "uncounted"))
        print(f"  {sid:20s} {truth:6d} {only:12.1f} {final:7.1f}  {tiles:>24s} {sent:10d} "
              f"{joules:8.2f}")
        errs_on.append(abs(only - truth))
        errs_final.append(abs(final - truth))
    print(f"  {'mean |error|':20s} {'':6s} {np.mean(errs_on):12.2f} {np.mean(errs_final):7.2f}")

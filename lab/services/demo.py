"""``targetfuse demo``: the whole system live on this machine, embedded defaults.

Starts the ground service (gRPC link end, counting worker, REST + dashboard, SQLite) and the
onboard service (REST intake, ONNX counter, SQLite outbox, rate-limited link) on loopback,
ports chosen at run time; submits the shipped real sample scenes (``samples/``: aircraft,
ships, vehicles, each asking for its class), waits until the ground has counted every
downlinked tile, and prints a table per scene with the truth. With ``--keep`` the services
stay up and it prints the dashboard URL.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from lab.services.live import Service, get_json, post_scene
from shared.api_keys import Credentials
from shared.imageio import encode


def sample_scenes():
    """(scene id, pixels, gsd, truth, class) of the shipped real samples (``samples/``: one
    per class, from the sources' test splits), each to be counted for its own class."""
    from lab.data.samples import load_samples

    return [(s.name, s.load_pixels(), s.gsd_m, s.truth, s.cls) for s in load_samples()]


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job: both services live, sample scenes")
    p.add_argument("--out", default="out/demo", help="where the services keep their data")
    p.add_argument("--budget-fraction", type=float, default=0.10)
    p.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    p.add_argument("--screenshot", default=None, metavar="PNG",
                   help="once every scene is counted, draw the dashboard into this PNG with "
                        "headless Chromium (the README's picture: docs/images/dashboard.png)")
    p.set_defaults(func=lambda a: run(a.out, keep=a.keep, budget_fraction=a.budget_fraction,
                                      screenshot=a.screenshot))


def screenshot_dashboard(url: str, png: Path, width: int = 1280, height: int = 1600) -> Path:
    """The dashboard at ``url`` drawn by headless Chromium into ``png``."""
    import shutil as sh
    import subprocess

    browser = sh.which("chromium") or sh.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("headless Chromium is needed for --screenshot (Debian: "
                                "apt-get install chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", "--virtual-time-budget=10000",
                    f"--screenshot={png}", url], check=True, capture_output=True, timeout=180)
    return png


def run(out: str | Path = "out/demo", keep: bool = False,
        budget_fraction: float = 0.10, timeout_s: float = 600.0,
        screenshot: str | Path | None = None) -> int:
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
    # Both services authenticate (the default): the demo makes its keys, as the compose
    # file's keys step does, and its own requests carry the operator's key.
    keys = Credentials.make(out / "keys")
    g_app = ground_app(GroundSettings(grpc_host="127.0.0.1", grpc_port=0,
                                      db_path=out / "ground" / "ground.db", threads=2,
                                      **keys.ground()))
    ground = Service(g_app)
    g_port = ground.start()
    dashboard = f"http://127.0.0.1:{g_port}/#key={keys.rest_key}"
    o_settings = OnboardSettings(data_dir=out / "onboard",
                                 ground_target=f"127.0.0.1:{g_app.state.grpc_port}",
                                 budget_fraction=budget_fraction,
                                 link_rate_bytes_s=2_000_000, **keys.onboard())
    onboard = Service(onboard_app(o_settings))
    o_port = onboard.start()
    print(f"  ground: dashboard {dashboard}, gRPC 127.0.0.1:{g_app.state.grpc_port}")
    print(f"  onboard: REST http://127.0.0.1:{o_port}/v1/scenes, link "
          f"{o_settings.link_rate_bytes_s / 1e6:.1f} MB/s, downlink budget "
          f"{budget_fraction:.0%} of raw tile bytes per scene")
    try:
        # the onboard-only column counts with the pair the onboard service loaded
        counter = OnboardCounter.shipped(o_settings.model, o_settings.models_dir)
        rows, warnings = [], []
        scenes = [s for s in sample_scenes() if s[4] in counter.classes]
        for sid, pixels, gsd, _, cls in scenes:
            meta = {"scene_id": sid, "classes": [cls]}
            if gsd:
                meta["gsd_m"] = gsd
            post_scene(f"http://127.0.0.1:{o_port}/v1/scenes", encode(pixels, ".png"), meta,
                       key=keys.rest_key)
            print(f"  submitted {sid} ({pixels.shape[1]}x{pixels.shape[0]} px, count {cls}, "
                  f"GSD {f'{gsd} m' if gsd else 'not given'})")
        deadline = time.time() + timeout_s
        for sid, pixels, gsd, truth, cls in scenes:
            while True:
                ob = get_json(f"http://127.0.0.1:{o_port}/v1/scenes/{sid}", keys.rest_key)
                gr = get_json(f"http://127.0.0.1:{g_port}/v1/scenes/{sid}", keys.rest_key) \
                    if ob["state"] in ("downlinking", "delivered") else None
                if ob["state"] in ("failed", "refused"):
                    raise RuntimeError(f"{sid} {ob['state']}: {ob['error']}")
                # the onboard's figures are final once the ground confirmed every part
                # (its bytes count on acknowledgement, which can trail the ground's count)
                if gr and gr.get("complete") and ob["state"] == "delivered":
                    break
                if time.time() > deadline:
                    raise TimeoutError(f"{sid} not complete after {timeout_s} s")
                time.sleep(0.2)
            only = counter.count(pixels, gsd, classes=[cls]).outputs.total
            res = ob["result"]
            rows.append((sid, cls, truth, only, gr["total"], gr["tiles_by_provenance"],
                         ob["downlink"]["bytes_sent"], res["energy_j"]["total"]))
            warnings += [f"{sid}: {w}" for w in res.get("warnings", [])]
        _print_table(rows)
        for w in warnings:
            print(f"  note: {w}")
        if screenshot:
            print(f"  dashboard drawn to {screenshot_dashboard(dashboard, Path(screenshot))}")
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
    print(f"\n  {'scene':20s} {'class':8s} {'truth':>5s} {'onboard-only':>12s} {'final':>6s}  "
          f"{'acc/down/reuse/disc/unc':>23s} {'bytes sent':>10s} {'energy J':>8s}")
    errs_on, errs_final = [], []
    for sid, cls, truth, only, final, prov, sent, joules in rows:
        tiles = "/".join(str(prov.get(k, 0)) for k in
                         ("accepted", "downlinked", "reused", "discarded", "uncounted"))
        print(f"  {sid:20s} {cls:8s} {truth:5d} {only:12.1f} {final:6.1f}  {tiles:>23s} "
              f"{sent:10d} {joules:8.2f}")
        errs_on.append(abs(only - truth))
        errs_final.append(abs(final - truth))
    print(f"  {'mean |error|':20s} {'':8s} {'':5s} {np.mean(errs_on):12.2f} "
          f"{np.mean(errs_final):6.2f}")

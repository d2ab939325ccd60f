"""``targetfuse link-experiment``: link experiments over real kernel shaping, the live
services in two network namespaces.

For each throttling policy and each link rate: create the namespaces (``deploy/netns.sh``),
shape the onboard side with ``deploy/shape.sh`` (tbf for the rate; netem also applies delay
and loss where the kernel has it), start ``targetfuse-ground`` and ``targetfuse-onboard``
inside them, open one contact window of ``--window-s`` seconds (the onboard throttle plans
each scene with the bytes the window can still carry at that rate), submit the scenes (this
module's ``submit``, run inside the onboard namespace as ``python -m lab.experiments.link``),
and record per run: CMAE against the annotated truth, bytes delivered, goodput, and the time
until the ground had counted everything. Writes ``link_experiment.csv`` and
``link_experiment.png`` into ``--out``. Needs root (namespaces, tc).

    sudo .venv/bin/targetfuse link-experiment --rates 0.5mbit,1mbit,2mbit,8mbit \\
        --out docs/link-experiment
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.data.realdev import add_real_dev_option
from lab.out_folder import out_folder
from lab.services.live import get_json, post_scene
from shared.api_keys import Credentials
from shared.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
ONBOARD_URL = "http://127.0.0.1:8080"  # seen from the onboard namespace
GROUND_URL = "http://192.0.2.2:8081"  # the ground's end of the veth pair


def submit(manifest: list[dict], timeout: float, window_start: float) -> dict:
    """Inside the onboard namespace: wait for both services, post every scene of
    ``manifest`` to the onboard intake, and poll the ground until each is complete or the
    time is up; per scene its total, seconds from the contact window's opening and whether
    it completed, and the bytes the onboard link sent."""
    deadline = time.time() + timeout
    while True:
        try:
            if get_json(f"{ONBOARD_URL}/healthz") and get_json(f"{GROUND_URL}/healthz"):
                break
        except OSError:
            pass
        assert time.time() < deadline, "services did not start"
        time.sleep(0.2)
    for s in manifest:
        post_scene(f"{ONBOARD_URL}/v1/scenes", Path(s["png"]).read_bytes(),
                   {"scene_id": s["id"], "gsd_m": s["gsd"]})
    out, pending = {}, {s["id"] for s in manifest}
    t0 = window_start  # times count from the contact window's opening
    while pending and time.time() < deadline:
        for sid in list(pending):
            try:
                g = get_json(f"{GROUND_URL}/v1/scenes/{sid}")
            except OSError:
                g = None
            if g and g.get("complete"):
                out[sid] = {"total": g["total"], "seconds": time.time() - t0, "complete": True}
                pending.discard(sid)
        time.sleep(0.2)
    for sid in pending:  # the window closed first: the ground's partial total
        g = get_json(f"{GROUND_URL}/v1/scenes/{sid}") or {}
        out[sid] = {"total": g.get("total"), "seconds": time.time() - t0, "complete": False}
    link = get_json(f"{ONBOARD_URL}/v1/link")
    return {"scenes": out, "bytes_sent": link["bytes_sent"]}


def rate_bytes_s(rate: str) -> float:
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0}
    for u, f in units.items():
        if rate.endswith(u):
            return float(rate[: -len(u)]) * f / 8
    raise ValueError(f"bad rate {rate!r} (like 2mbit)")


def experiment_scenes(real_dev: str | None):
    """(scene id, pixels, gsd, truth): a synthetic airport scene and, when the real-dev data
    are present, 3 Airbus validation scenes (the scenes of the figures in docs/DEPLOY.md)."""
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
    val = json.loads((ROOT / "models/splits/airbus_aircraft.json").read_text())["val"]
    for img in [i for i in ds.images if i.image_id in set(val)][:3]:
        truth = len(truth_objects(img, {"Airplane", "Truncated_airplane"}, 0.3)[0])
        out.append((f"airbus-{img.image_id[:8]}", img.load_pixels(), 0.5, truth))
    return out


def scenes(args, folder: Path) -> list[dict]:
    from shared.imageio import encode

    out = []
    chosen = experiment_scenes(args.real_dev)
    if args.skip_synthetic and len(chosen) > 1:
        chosen = chosen[1:]  # the real scenes alone
    for sid, pixels, gsd, truth in chosen[: args.scenes]:
        png = folder / f"{sid}.png"
        png.write_bytes(encode(pixels, ".png"))
        out.append({"id": sid, "png": str(png), "gsd": gsd, "truth": truth})
    return out


def run_one(args, policy: str, rate: str, manifest: list[dict], work: Path) -> dict:
    prefix = "tfx" + str(os.getpid() % 10000)
    sh = [str(ROOT / "deploy/netns.sh")]
    subprocess.run([*sh, "up", prefix], check=True, capture_output=True)
    procs = []
    try:
        shape = [str(ROOT / "deploy/shape.sh"), "apply", "--dev", f"{prefix}-ob0",
                 "--rate", rate]
        if args.delay:
            shape += ["--delay", args.delay]
        if args.loss:
            shape += ["--loss", args.loss]
        shaped = subprocess.run(["ip", "netns", "exec", f"{prefix}-onboard", *shape],
                                capture_output=True, text=True, check=True)
        qdisc = "netem" if "netem on" in shaped.stderr else "tbf"
        start = time.time() + args.startup_s
        env = {**os.environ, **Credentials.make(work / "keys", hosts=("192.0.2.2",)).env(),
               "TARGETFUSE_GROUND_DB_PATH": str(work / "ground.db"),
               # reached from the onboard namespace (the services bind loopback by default)
               "TARGETFUSE_GROUND_GRPC_HOST": "0.0.0.0", "TARGETFUSE_GROUND_HTTP_HOST": "0.0.0.0",
               "TARGETFUSE_GROUND_THREADS": "1",
               "TARGETFUSE_ONBOARD_DATA_DIR": str(work / "onboard"),
               "TARGETFUSE_ONBOARD_GROUND_TARGET": "192.0.2.2:50051",
               "TARGETFUSE_ONBOARD_POLICY": policy,
               "TARGETFUSE_ONBOARD_BUDGET_FRACTION": str(args.budget_fraction),
               "TARGETFUSE_ONBOARD_LINK_RATE_BYTES_S": str(rate_bytes_s(rate)),
               "TARGETFUSE_ONBOARD_CONTACT_WINDOWS": json.dumps(
                   [[start, start + args.window_s]])}
        for side in ("ground", "onboard"):
            cli = str(Path(sys.executable).with_name(f"targetfuse-{side}"))
            procs.append(subprocess.Popen(["ip", "netns", "exec", f"{prefix}-{side}", cli],
                                          env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        man = work / "manifest.json"
        man.write_text(json.dumps(manifest))
        out = subprocess.run(["ip", "netns", "exec", f"{prefix}-onboard", sys.executable,
                              "-m", "lab.experiments.link", str(man),
                              str(args.startup_s + args.window_s + 30), str(start)],
                             capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        res = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        subprocess.run([*sh, "down", prefix], capture_output=True)
    errs = [abs((res["scenes"][s["id"]]["total"] or 0.0) - s["truth"]) for s in manifest]
    done = max(v["seconds"] for v in res["scenes"].values())
    return {"policy": policy, "rate": rate, "rate_bytes_s": rate_bytes_s(rate), "qdisc": qdisc,
            "cmae": sum(errs) / len(errs), "scenes": len(manifest),
            "complete": sum(v["complete"] for v in res["scenes"].values()),
            "bytes_sent": res["bytes_sent"], "seconds_to_complete": round(done, 2),
            "goodput_bytes_s": round(res["bytes_sent"] / max(done, 1e-6), 1)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for policy in sorted({r["policy"] for r in rows}):
        pts = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["rate_bytes_s"])
        x = [8 * r["rate_bytes_s"] / 1e6 for r in pts]
        axes[0].plot(x, [r["cmae"] for r in pts], "o-", label=policy)
        axes[1].plot(x, [r["goodput_bytes_s"] * 8 / 1e6 for r in pts], "o-", label=policy)
        axes[2].plot(x, [r["seconds_to_complete"] for r in pts], "o-", label=policy)
    xs = sorted({8 * r["rate_bytes_s"] / 1e6 for r in rows})
    axes[1].plot(xs, xs, "k--", lw=0.8, label="shaped rate")
    for ax, label in zip(axes, ("CMAE", "goodput (Mbit/s)", "seconds to complete"),
                         strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("link rate (Mbit/s, kernel-shaped)")
        ax.set_ylabel(label)
    axes[0].legend()
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("link-experiment",
                       help="link experiments over kernel shaping: CMAE, goodput and time per "
                            "rate and policy (root: network namespaces, tc)")
    p.add_argument("--rates", default="0.5mbit,1mbit,2mbit,8mbit")
    p.add_argument("--policies", default="value,dynamic-conf")
    p.add_argument("--delay", default=None, help="netem only, e.g. 40ms")
    p.add_argument("--loss", default=None, help="netem only, percent")
    p.add_argument("--window-s", type=float, default=20.0, help="contact window length")
    p.add_argument("--startup-s", type=float, default=15.0, help="before the window opens")
    p.add_argument("--budget-fraction", type=float, default=0.25)
    p.add_argument("--scenes", type=int, default=4, help="synthetic + Airbus val scenes")
    p.add_argument("--skip-synthetic", action="store_true",
                   help="real scenes only (when the real data are present)")
    add_real_dev_option(p)
    p.add_argument("--out", default="out/link-experiment",
                   help="folder for link_experiment.csv and link_experiment.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("targetfuse link-experiment: needs root (network namespaces, tc)",
              file=sys.stderr)
        return 2
    out = out_folder(args.out, "link_experiment.csv and link_experiment.png")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = scenes(args, Path(tmp))
        for policy in args.policies.split(","):
            for rate in args.rates.split(","):
                work = Path(tmp) / f"{policy}-{rate}"
                work.mkdir()
                row = run_one(args, policy, rate, manifest, work)
                print(json.dumps(row), flush=True)
                rows.append(row)
    with (out / "link_experiment.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, out / "link_experiment.png")
    print(f"wrote {out}/link_experiment.csv and .png")
    return 0


if __name__ == "__main__":
    # Inside the onboard namespace (run_one): MANIFEST TIMEOUT_S WINDOW_START; the result is
    # the last line of stdout.
    manifest_file, timeout_s, window_start = sys.argv[1:4]
    result = submit(json.loads(Path(manifest_file).read_text()), float(timeout_s),
                    float(window_start))
    print(json.dumps(result))

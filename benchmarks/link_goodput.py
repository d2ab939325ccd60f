"""Goodput of the downlink under kernel shaping (tbf), against the shaped rate.

Two network namespaces joined by a veth pair (``deploy/netns.sh``), tbf at each rate on the
onboard side (``deploy/shape.sh``), a ground link end in one namespace and the onboard link
client in the other pushing a known payload (``lab/services/netns_roles.py``). Prints, per
rate, the payload bytes per second of sending and its ratio to the shaped rate (figures of
one run: these machines are shared; a loaded machine reads lower). Needs root, ip and tc.

    sudo .venv/bin/python benchmarks/link_goodput.py --rates 1mbit,4mbit --payload 3000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLES = [sys.executable, "-m", "lab.services.netns_roles"]  # one program per namespace role

from shared.api_keys import Credentials  # noqa: E402

UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def bits_per_s(rate: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)", rate)
    if not m:
        raise SystemExit(f"bad rate {rate!r}: e.g. 4mbit")
    return float(m.group(1)) * UNITS[m.group(2)]


def in_ns(prefix: str, side: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", f"{prefix}-{side}", *cmd]


def measure(prefix: str, rate: str, payload: int, work: Path) -> dict:
    subprocess.run(in_ns(prefix, "onboard", str(ROOT / "deploy/shape.sh"), "apply", "--dev",
                         f"{prefix}-ob0", "--rate", rate), check=True, capture_output=True)
    keys = {**os.environ, **Credentials.make(work / "keys", hosts=("192.0.2.2",)).env()}
    ground = subprocess.Popen(in_ns(prefix, "ground", *ROLES, "ground",
                                    str(work / f"g-{rate}.db"), "600"),
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=keys)
    try:
        if ground.stdout.readline().strip() != "ready":
            raise SystemExit("the ground link end did not start")
        out = subprocess.run(in_ns(prefix, "onboard", *ROLES, "send",
                                   str(payload), str(work / f"o-{rate}.db")),
                             capture_output=True, text=True, cwd=ROOT, timeout=600, check=True,
                             env=keys)
    finally:
        ground.kill()
        ground.wait()
    m = json.loads(out.stdout.strip().splitlines()[-1])
    shaped = bits_per_s(rate) / 8
    goodput = m["payload"] / m["seconds"]
    return {"rate": rate, "shaped_B_s": shaped, "payload_B": m["payload"],
            "wire_B": m["bytes"], "seconds": round(m["seconds"], 3),
            "goodput_B_s": round(goodput), "ratio": round(goodput / shaped, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="1mbit,4mbit", help="comma-separated tc rates")
    p.add_argument("--payload", type=int, default=3_000_000, help="bytes per measurement")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces and tc): run it with sudo")
    prefix = "b" + "".join(random.choices(string.ascii_lowercase, k=5))
    work = Path("out/bench-goodput")
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([ROOT / "deploy/netns.sh", "up", prefix], check=True, capture_output=True)
    try:
        rows = [measure(prefix, r.strip(), args.payload, work)
                for r in args.rates.split(",") if r.strip()]
    finally:
        subprocess.run([ROOT / "deploy/netns.sh", "down", prefix], capture_output=True)
    print(f"{'rate':>8} {'shaped B/s':>11} {'goodput B/s':>12} {'ratio':>6} {'seconds':>8}")
    for r in rows:
        print(f"{r['rate']:>8} {r['shaped_B_s']:>11.0f} {r['goodput_B_s']:>12} "
              f"{r['ratio']:>6.3f} {r['seconds']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory layout for the PyTorch counters on CPU: NCHW against channels-last (NHWC).

oneDNN picks different convolution kernels for the two layouts. For each architecture the
project trains (the ground's Lite2 pyramid, the onboard Lite0 pyramid), this times on one
thread, interleaved in one run (these machines are shared and noisy): inference per 256 px
tile (a batch of 16) and a training step (forward, backward and AdamW on a batch of 8), in
each layout, and prints the ratios and the largest difference between the two layouts'
outputs. The counters train and the ground counts in channels-last
(``ground.nets.layers.channels_last``).

    .venv/bin/python benchmarks/channels_last.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ground.nets.layers import channels_last, nhwc
from lab.models.nets import build

ARCHS = {"effnet-lite2-fpn": {"classes": 3}, "effnet-lite0-fpn-light": {"classes": 3}}


def _infer(net, x) -> float:
    with torch.inference_mode():
        t0 = time.perf_counter()
        net(x)
    return (time.perf_counter() - t0) / len(x) * 1000


def _step(net, opt, x) -> float:
    t0 = time.perf_counter()
    d, m = net(x)
    loss = d.mean() + m.mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return (time.perf_counter() - t0) * 1000


def measure(arch: str, repeats: int) -> dict:
    torch.manual_seed(0)
    nchw = build(arch, ARCHS[arch])
    nhwc_net = channels_last(build(arch, ARCHS[arch]))
    nhwc_net.load_state_dict(nchw.state_dict())
    tiles = torch.rand(16, 3, 256, 256)
    with torch.inference_mode():
        diff = float((nchw.eval()(tiles)[0] - nhwc_net.eval()(nhwc(tiles))[0]).abs().max())
    times: dict[str, list[float]] = {k: [] for k in ("infer_nchw", "infer_nhwc", "train_nchw",
                                                     "train_nhwc")}
    runs = [("nchw", nchw, tiles), ("nhwc", nhwc_net, nhwc(tiles))]
    opts = [torch.optim.AdamW(net.parameters(), 1e-5) for _, net, _ in runs]
    for r in range(repeats + 1):  # the first round warms the kernels up and is not kept
        for (name, net, x), opt in zip(runs, opts, strict=True):
            inf = _infer(net.eval(), x)
            net.train()
            step = _step(net, opt, x[:8])  # a slice keeps its layout
            if r:
                times[f"infer_{name}"].append(inf)
                times[f"train_{name}"].append(step)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"arch": arch, **{k: round(v, 1) for k, v in med.items()},
            "infer_speedup": round(med["infer_nchw"] / med["infer_nhwc"], 2),
            "train_speedup": round(med["train_nchw"] / med["train_nhwc"], 2),
            "max_density_difference": diff}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    print("| architecture | infer ms/tile NCHW | NHWC | speed-up | train step ms NCHW | NHWC "
          "| speed-up | max density difference |")
    print("|---|---|---|---|---|---|---|---|")
    for arch in ARCHS:
        m = measure(arch, args.repeats)
        print(f"| {arch} | {m['infer_nchw']} | {m['infer_nhwc']} | {m['infer_speedup']}x | "
              f"{m['train_nchw']} | {m['train_nhwc']} | {m['train_speedup']}x | "
              f"{m['max_density_difference']:.2e} |")


if __name__ == "__main__":
    main()

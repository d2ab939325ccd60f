"""Which onnxruntime model and kernel options the onboard counter runs, chosen by measurement.

Candidates: the fp32 export; the int8 model (static QDQ) with onnxruntime's default kernels;
the int8 model with ``session.x64quantprecision`` (exact u8 x s8 products on x86 CPUs without
VNNI, where the default kernels' 16-bit pair sums can saturate). Which is fastest, and whether
the plain int8 kernels are exact, depends on the CPU: on one machine here int8 with the exact
option ran 1.9x slower than plain int8 and 1.2x slower than fp32 (AVX-512 VNNI); on an
AVX2-only CPU the plain kernels miscount.

Algorithm, at start-up: run every candidate on the same calibration tiles (real tiles when
given, else a fixed-seed synthetic set), time ``repeats`` interleaved passes of one tile at a
time, and compare each candidate's tile counts and density maps with fp32's (the reference).
A candidate qualifies when, per tile, its count differs from fp32's by at most
``COUNT_TOLERANCE`` x max(1, fp32's count), and by ``MEAN_TOLERANCE`` x that on average;
the fastest (median time) qualified candidate is chosen. fp32 always qualifies, so a choice
always exists. A forced choice (setting ``precision``) skips the measurement.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from shared.uplink.parity import COUNT_TOLERANCE, MEAN_TOLERANCE

log = logging.getLogger("targetfuse.onboard")

CANDIDATES = ("int8", "int8-exact", "fp32")
CHOICES = ("auto", *CANDIDATES)
# COUNT_TOLERANCE, MEAN_TOLERANCE: relative to a tile's count (at least 1 object); the
# saturating kernels were off by 0.25 of 1.57 objects on one tile (see above), quantisation
# itself costs a few per cent. The same numbers hold an uplinked model to the ground's canary
# counts, so they are defined once, there.


@dataclass
class KernelChoice:
    chosen: str
    ms_per_tile: dict[str, float]  # median over the repeats, per candidate measured
    count_diff_max: dict[str, float]  # largest |count - fp32 count| / max(1, fp32 count)
    count_diff_mean: dict[str, float]
    qualified: list[str]
    tiles: int

    def as_dict(self) -> dict:
        return asdict(self)


def calibration_tiles(input_size: int, n: int = 8, seed: int = 0,
                      canary: np.ndarray | None = None, convention: str | None = None
                      ) -> np.ndarray:
    """The pair's canary tiles (real uint8 RGB tiles shipped beside the model), else
    fixed-seed synthetic ones: smooth noise with bright blobs, so the counter sees structure
    (flat tiles would leave every candidate at a count of ~0); as the counter's input
    ``convention`` (``shared.preprocess``) has them: normalised (3, S, S) float32 by
    default, uint8 (S, S, 3) for a counter that normalises in its graph."""
    from shared.preprocess import NORMALISED_INPUT, RAW_INPUT, normalise

    convention = convention or NORMALISED_INPUT

    def as_input(rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(rgb, np.uint8) if convention == RAW_INPUT else \
            normalise(rgb).astype(np.float32)

    if canary is not None and len(canary):
        return np.stack([as_input(t) for t in canary])
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(n):
        base = rng.normal(110, 25, (input_size // 8, input_size // 8, 3))
        img = np.kron(base, np.ones((8, 8, 1)))
        for _ in range(rng.integers(3, 30)):
            y, x = rng.integers(0, input_size - 12, 2)
            img[y:y + rng.integers(4, 12), x:x + rng.integers(4, 12)] += rng.uniform(60, 120)
        tiles.append(as_input(np.clip(img, 0, 255).astype(np.uint8)))
    return np.stack(tiles)


def choose(runners: dict[str, Callable[[np.ndarray], np.ndarray]], tiles: np.ndarray,
           repeats: int = 3) -> KernelChoice:
    """``runners``: candidate -> function from a batch of one (a ``calibration_tiles`` tile)
    to its density map (N, C, h, w). fp32 must be among them."""
    if "fp32" not in runners:
        raise ValueError("kernel choice needs the fp32 reference")
    counts = {name: np.array([float(run(t[None]).sum()) for t in tiles])
              for name, run in runners.items()}  # also warms every session up
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():  # interleaved: machine noise hits all alike
            t0 = time.perf_counter()
            for t in tiles:
                run(t[None])
            times[name].append(1000 * (time.perf_counter() - t0) / len(tiles))
    ref = counts["fp32"]
    scale = np.maximum(1.0, np.abs(ref))
    diff_max = {n: float((np.abs(c - ref) / scale).max()) for n, c in counts.items()}
    diff_mean = {n: float((np.abs(c - ref) / scale).mean()) for n, c in counts.items()}
    ms = {n: statistics.median(t) for n, t in times.items()}
    qualified = [n for n in runners
                 if diff_max[n] <= COUNT_TOLERANCE and diff_mean[n] <= MEAN_TOLERANCE]
    chosen = min(qualified, key=lambda n: ms[n])
    result = KernelChoice(chosen, ms, diff_max, diff_mean, qualified, len(tiles))
    log.info("onboard counter kernels: chose %s (ms per tile %s; count difference to fp32, "
             "max %s)", chosen, {n: round(v, 2) for n, v in ms.items()},
             {n: round(v, 4) for n, v in diff_max.items()})
    return result

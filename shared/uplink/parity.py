"""A new onboard counter's parity check on the pair's canary tiles.

When the ground builds a bundle with a new ONNX model it runs the model (onnxruntime) on the
pair's canary tiles (``models/<pair>/canary.npz``: real tiles shipped with the pair,
``shared.model_bundle.ModelBundle.canary``) and records each tile's total density in the
manifest, with the canary file's sha256. The satellite runs the uplinked model on its own copy
of the same tiles (the sha256 must match) and refuses the model unless every count agrees
within ``COUNT_TOLERANCE`` x max(1, count), and all of them within ``MEAN_TOLERANCE`` on
average: the tolerances ``onboard.kernel_choice`` holds int8 kernels to against fp32 (another
CPU's kernels may differ a little; a corrupt, truncated or wrong model differs a lot, or does
not run). A pair that ships no canary tiles takes no new model over the uplink.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Relative to a tile's count (at least 1 object); onboard.kernel_choice holds int8 kernels to
# fp32 by the same numbers (it imports them).
COUNT_TOLERANCE = 0.1
MEAN_TOLERANCE = 0.03


def canary_batch(tiles: np.ndarray, convention: str) -> np.ndarray:
    """The canary tiles (uint8 (N, S, S, 3)) as the counter's input tensor holds them
    (``shared.preprocess``): normalised float32 (N, 3, S, S), or uint8 as they are."""
    from shared.preprocess import RAW_INPUT, normalise

    if convention == RAW_INPUT:
        return np.ascontiguousarray(tiles, np.uint8)
    return np.stack([normalise(t).astype(np.float32) for t in tiles])


def canary_counts(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> list[float]:
    """Each tile's total density (the model's first output, unscaled), one tile at a time."""
    out = [float(np.asarray(run(t[None])).sum()) for t in batch]
    if not all(math.isfinite(v) for v in out):
        raise ValueError("the model gives non-finite counts on the canary tiles")
    return out


def parity_failure(expected: list[float], got: list[float]) -> str | None:
    """Why ``got`` does not match ``expected`` (None: it does)."""
    if len(expected) != len(got):
        return f"{len(got)} canary counts for {len(expected)} expected"
    ref = np.asarray(expected, float)
    rel = np.abs(np.asarray(got, float) - ref) / np.maximum(1.0, np.abs(ref))
    if rel.max() > COUNT_TOLERANCE or rel.mean() > MEAN_TOLERANCE:
        worst = int(rel.argmax())
        return (f"canary tile {worst}: count {got[worst]:.4g} against {expected[worst]:.4g} "
                f"measured on the ground (relative difference {rel.max():.3g}, mean "
                f"{rel.mean():.3g}; allowed {COUNT_TOLERANCE}, {MEAN_TOLERANCE})")
    return None


def onnx_runner(model: bytes, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an input batch to the model's first output, under onnxruntime (the
    ground needs it only to build a bundle with a new model)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError("a bundle with a new ONNX model needs onnxruntime to record its "
                         "canary counts (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # Exact int8 products on any x86 CPU (onboard/counter.py says why): the reference counts
    # must not depend on the ground's kernels.
    opts.add_session_config_entry("session.x64quantprecision", "1")
    try:
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise ValueError(f"the ONNX model does not load: {str(exc)[:200]}") from None
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]

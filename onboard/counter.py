"""The onboard counter: the shallow ONNX model under onnxruntime on a CPU budget.

The session is set up for a constrained flight computer: a configurable number of intra-op
threads (default 1), one inter-op thread, sequential execution, and no spin-waiting (idle
threads sleep instead of burning the energy budget). The pair's files come from its
``shared.model_bundle.ModelBundle``, which checks each against the sha256 its card
records. Each tile gets a count (the density sum) and a calibrated confidence
(``shared.confidence``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from onboard.kernel_choice import CANDIDATES, CHOICES, KernelChoice, calibration_tiles, choose
from shared.confidence import ConfidenceModel, tile_features
from shared.counting import TileCounter, TileOutputs, TileRun, run_tiles
from shared.model_bundle import ModelBundle
from shared.model_card import ModelCard
from shared.preprocess import RAW_INPUT, prepare_tile


def session_options(threads: int = 1, exact_int8: bool = True) -> ort.SessionOptions:
    if threads < 1:
        raise ValueError(f"onnxruntime threads must be >= 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8 x int8 through
    # saturating 16-bit pair sums: the int8 counter then miscounts (measured on an AMD EPYC
    # with AVX2 only: the vehicle counter off by 0.25 of 1.57 objects on one tile, 0.01 with
    # this on). This makes onnxruntime use the exact (slower) kernels there; on a CPU with
    # VNNI it only costs time (onboard/kernel_choice.py decides by measurement).
    if exact_int8:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    return opts


@dataclass
class OnboardResult:
    outputs: TileOutputs
    confidence: np.ndarray  # (n_tiles,) calibrated probability the count is right


class OnboardCounter(TileCounter):
    def __init__(self, card_file: Path | ModelBundle, threads: int = 1, batch_size: int = 1,
                 variant: str = "deployed"):
        """``card_file``: the pair's onboard card, or its files already loaded (a
        ``ModelBundle``: what the service shares with its planner). ``variant``: "deployed"
        (the card's ``deployed_variant``, else int8 with exact kernels when quantised),
        "fp32", "int8", "int8-exact", or "auto" (the fastest of those whose counts agree with
        fp32 on this CPU, measured now: ``onboard.kernel_choice``)."""
        self.bundle = card_file if isinstance(card_file, ModelBundle) else ModelBundle(card_file)
        self.card_file = self.bundle.card_file
        self.card: ModelCard = self.bundle.card
        self.threads = threads
        if variant not in ("deployed", *CHOICES):
            raise ValueError(f"variant must be one of deployed, {', '.join(CHOICES)}; "
                             f"got {variant!r}")
        quantised = bool(self.card.extra.get("fp32_onnx"))
        if variant == "deployed":
            # The card says when its int8 model missed fp32's counts at export (``ship``).
            variant = self.card.extra.get("deployed_variant") or \
                ("int8-exact" if quantised else "fp32")
        if not quantised and variant != "fp32":
            variant = "fp32"  # an fp32-only card has nothing else to choose from
        self.kernel_choice: KernelChoice | None = None
        if variant == "auto":
            self.kernel_choice = choose({v: self._density_runner(self._session(v))
                                         for v in CANDIDATES},
                                        calibration_tiles(self.card.input_size,
                                                          canary=self.bundle.canary,
                                                          convention=self.input_convention))
            variant = self.kernel_choice.chosen
        self.variant = variant
        self.session = self._session(variant)
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self.confidence: ConfidenceModel | None = self.bundle.confidence

    @classmethod
    def shipped(cls, name: str, models_dir: Path | None = None, **kwargs) -> OnboardCounter:
        return cls(ModelBundle.shipped(name, "onboard", models_dir), **kwargs)

    def _session(self, variant: str) -> ort.InferenceSession:
        weights = self.bundle.weights
        if variant == "fp32" and self.bundle.fp32_weights is not None:
            weights = self.bundle.fp32_weights
        opts = session_options(self.threads, exact_int8=variant == "int8-exact")
        return ort.InferenceSession(str(weights), opts, providers=["CPUExecutionProvider"])

    @staticmethod
    def _density_runner(session: ort.InferenceSession):
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]

    def run_batch(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """density (with the card's count scale), mask logits and, from a model that exports
        them, pooled features. ``batch``: in the card's input convention (uint8 RGB for a
        counter that normalises in its graph, else normalised float32)."""
        batch = batch.astype(np.uint8 if self.input_convention == RAW_INPUT else np.float32,
                             copy=False)
        density, *rest = self.session.run(None, {self.input_name: batch})
        return (self.scaled(density), *rest)

    def model_input(self, tile: np.ndarray, tile_size: int) -> np.ndarray:
        """One tile cut at ``tile_size`` source pixels as a batch of one, exactly as counting
        gives it to the session (benchmarks time ``session.run`` on it)."""
        x = prepare_tile(tile, self.input_size, self.input_size / tile_size,
                         self.input_convention)[None]
        return x if self.input_convention == RAW_INPUT else x.astype(np.float32)

    def _confidence(self, density, masks, embedding) -> np.ndarray:
        if self.confidence is None or not len(density):
            return np.full(len(density), np.nan)
        return self.confidence.predict(tile_features(density, masks), embedding)

    def count(self, pixels: np.ndarray, scene_gsd: float | None,
              tile_size: int | None = None, classes: Sequence[str] | None = None
              ) -> OnboardResult:
        out = self.count_tiles(pixels, scene_gsd, tile_size, classes)
        return OnboardResult(out, self._confidence(out.density, out.mask_logits,
                                                   out.embedding))

    def run_at(self, tiles: list[np.ndarray], tile_size: int,
               channels: Sequence[int] | None = None) -> tuple[TileRun, np.ndarray]:
        """Outputs and confidences of tiles cut at ``tile_size`` source pixels, each resized
        to the counter's input (adaptive tiling), over the requested class channels."""
        run = run_tiles(self.run_batch, tiles, self.input_size, self.input_size / tile_size,
                        self.batch_size, channels, self.input_convention)
        return run, self._confidence(run.density, run.mask_logits, run.embedding)

    def count_at(self, tiles: list[np.ndarray], tile_size: int,
                 channels: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, confidences and density maps (see ``run_at``)."""
        run, conf = self.run_at(tiles, tile_size, channels)
        return run.counts, conf, run.density

    def count_tile(self, index: int, tile: np.ndarray, tile_size: int,
                   channels: Sequence[int] | None = None
                   ) -> tuple[float, float, np.ndarray, np.ndarray]:
        """One tile: the pipeline's ``count_fn`` (the index is not needed here): count,
        confidence, density map and the count of each requested class."""
        run, conf = self.run_at([tile], tile_size, channels)
        return float(run.counts[0]), float(conf[0]), run.density[0], run.class_counts[0][
            channels if channels is not None else slice(None)]

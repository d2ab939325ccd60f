"""The ground counter: the deep PyTorch model, batched, optionally under bf16 autocast.

Its files come from the pair's ``shared.model_bundle.ModelBundle``, which checks the weight
file's sha256 against its model card. Weights ship in float16 to keep the file small and
are computed in float32 (or bf16 autocast on CPU / fp16 on CUDA when ``precision`` asks for
it and the card says accuracy holds). The card's default precision applies only where the
hardware computes it natively; elsewhere the default is fp32 (an explicit ``precision`` is
always obeyed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ground.class_network import ClassNetworkSpec, CountingNet
from ground.nets.layers import channels_last, nhwc
from ground.nets.registry import build
from shared.counting import TileCounter, TileOutputs
from shared.model_bundle import ModelBundle
from shared.model_card import ModelCard

PRECISIONS = ("fp32", "bf16", "fp16")


def native_precision(precision: str, device: torch.device) -> bool:
    """Whether ``device`` computes ``precision`` natively (not by slow emulation)."""
    if device.type != "cpu" or precision == "fp32":
        return True
    if precision == "bf16":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return False  # fp16 autocast on CPU: no fast kernels


def load_network(card: ModelCard, weights: Path, build_net=build) -> torch.nn.Module:
    """The card's network with the weight file's state dict (float16 files computed in
    float32), in eval mode; ``build_net``: another registry's builder (the tooling's knows
    the onboard architectures too)."""
    return with_weights(build_net(card.architecture, card.arch_config), weights)


def with_weights(model: torch.nn.Module, weights: Path) -> torch.nn.Module:
    """``model`` with a weight file's state dict (float16 files computed in float32), in
    eval mode."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in state.items()})
    return channels_last(model).eval()


def class_network(bundle: ModelBundle) -> tuple[ClassNetworkSpec | None,
                                                torch.nn.Module | None]:
    """The card's second network and what it counts (``ground.class_network``), its weight
    file checked against the card; (None, None) for a card without one."""
    spec = bundle.card.extra.get("class_network_spec")
    if not spec:
        return None, None
    spec = ClassNetworkSpec.of(spec, list(bundle.card.classes))
    weights = bundle.named_file("class_network")
    if weights is None:
        raise ValueError(f"{bundle.card_file}: class_network_spec without a class_network file")
    return spec, with_weights(build(spec.architecture, spec.arch_config), weights)


class GroundCounter(TileCounter):
    def __init__(self, card_file: Path | ModelBundle, batch_size: int = 16,
                 precision: str | None = None, device: str | None = None,
                 threads: int | None = None, tta: bool | None = None):
        """``card_file``: the pair's ground card, or its files already loaded (a
        ``ModelBundle``: what the service shares with its aggregation)."""
        self.bundle = card_file if isinstance(card_file, ModelBundle) else ModelBundle(card_file)
        self.card_file = self.bundle.card_file
        self.card = self.bundle.card
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = load_network(self.card, self.bundle.weights)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.precision = precision or self.card.extra.get("default_precision", "fp32")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if precision is None and not native_precision(self.precision, self.device):
            # The card's default is chosen for speed at equal accuracy; without native
            # support the CPU emulates it (bf16 on an AVX2-only CPU: about 100x slower than
            # fp32 per tile), so count in fp32, whose accuracy the card records too.
            self.precision = "fp32"
        if threads:
            torch.set_num_threads(threads)
        # Test-time augmentation: the mean over the 4 rotations by 90 degrees (the ground has
        # the compute; averaging cuts the variance of the count).
        self.tta = self.card.extra.get("default_tta", False) if tta is None else tta
        # Classes counted at another input scale (``ground.class_scales``), or by a second
        # network (``ground.class_network``): one module either way.
        spec, member = class_network(self.bundle)
        if member is not None:
            member.to(self.device)
        self.net = CountingNet(self.model, list(self.card.classes),
                               self.card.extra.get("class_input_scale"), member, spec,
                               bool(self.tta))

    @classmethod
    def shipped(cls, name: str, models_dir: Path | None = None, **kwargs) -> GroundCounter:
        return cls(ModelBundle.shipped(name, "ground", models_dir), **kwargs)

    def run_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = nhwc(torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device))
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            density, mask = self.net(x)
        return (self.scaled(density.float().contiguous().cpu().numpy()),
                mask.float().contiguous().cpu().numpy())

    def count(self, pixels: np.ndarray, scene_gsd: float | None,
              tile_size: int | None = None, classes: Sequence[str] | None = None
              ) -> TileOutputs:
        return self.count_tiles(pixels, scene_gsd, tile_size, classes)

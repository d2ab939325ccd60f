"""The registry of the counter architectures the ground loads, by name.

Both families map an RGB tile (N, 3, S, S) to two maps per class at 1/4 resolution: a
density map (non-negative; the tile's count is its sum) and mask logits (object pixels;
trained with a soft Jaccard loss). A model card names its architecture and configuration;
``build`` makes the network for it. The ground's registry holds the ground architectures
(``deep``); the tooling's (``lab.nets``) adds the onboard ones it trains and exports to
ONNX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ground.nets.craft import craft_counter
from ground.nets.deep import deep_aspp
from ground.nets.efficientnet_lite import effnet_fpn


@dataclass(frozen=True)
class Architecture:
    name: str
    role: str  # "onboard" or "ground"
    build: Callable[[dict], nn.Module]
    defaults: dict = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {
    "deep-aspp": Architecture("deep-aspp", "ground", deep_aspp),
    # An ImageNet-pretrained EfficientNet-Lite2 trunk, whole, with a feature-pyramid decoder
    # to 1/4 (``ground.nets.efficientnet_lite``).
    "effnet-lite2-fpn": Architecture("effnet-lite2-fpn", "ground", effnet_fpn,
                                     {"variant": "lite2", "stages": 7, "decoder": 96,
                                      "refine": 2}),
    # CRAFT's VGG16-BN trunk and U-Net decoder to 1/2, trained on heatmaps of small objects
    # (``ground.nets.craft``); its first three slices frozen while fine-tuning.
    "craft-unet": Architecture("craft-unet", "ground", craft_counter, {"frozen_slices": 3}),
}


def build(name: str, config: dict | None = None,
          registry: dict[str, Architecture] | None = None) -> nn.Module:
    """A network from its registry name; ``config`` overrides the architecture's defaults."""
    registry = ARCHITECTURES if registry is None else registry
    try:
        arch = registry[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(registry)}") \
            from None
    merged = {**arch.defaults, **(config or {})}
    merged = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
    return arch.build(merged)



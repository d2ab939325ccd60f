"""The registry of the counter architectures the ground loads, by name.

Both families map an RGB tile (N, 3, S, S) to two maps at 1/4 resolution: a density map
(non-negative; the tile's count is its sum) and mask logits (object pixels; trained with a
soft Jaccard loss). A model card names its architecture and configuration; ``build`` makes
the network for it. The ground's registry holds the ground architectures (``deep``); the
tooling's (``lab.nets``) adds the onboard ones it trains and exports to ONNX.

The density head ends in a ReLU divided by ``DENSITY_SCALE``: targets are small (an object
spreads over tens of output pixels), so the network works on a scaled copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ground.nets.deep import deep_aspp


@dataclass(frozen=True)
class Architecture:
    name: str
    role: str  # "onboard" or "ground"
    build: Callable[[dict], nn.Module]
    defaults: dict = field(default_factory=dict)


ARCHITECTURES: dict[str, Architecture] = {
    "deep-aspp": Architecture("deep-aspp", "ground", deep_aspp),
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


def count_flops(model: nn.Module, size: int) -> int:
    """FLOPs (2 x multiply-accumulates) of convolutions and linear layers for one
    size x size tile, counted with forward hooks on a real forward pass."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * k * module.in_channels // module.groups
        elif isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total

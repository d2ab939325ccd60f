"""The onboard counter's architecture, and the registry of every architecture training knows.

``shallow-*`` (onboard): MobileNetV2-style inverted residual blocks (depthwise separable
convolutions), a dilated last stage for context at 1/8, and a light decoder that merges the
1/4 features back in. Hundreds of MFLOPs per 256 px tile. The onboard service never runs
this code: it runs the ONNX export (``lab.shipping.ship``); the definition lives with the tooling
that trains and exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ground.nets import registry
from ground.nets.efficientnet_lite import effnet_fpn
from ground.nets.layers import Heads, conv_bn


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, dilation=dilation),
                   conv_bn(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


@dataclass
class ShallowConfig:
    widths: tuple[int, ...] = (16, 32, 48, 64)  # stem/stage1, 1/4, 1/8, dilated 1/8
    repeats: tuple[int, ...] = (2, 3, 2)  # blocks at 1/4, 1/8, dilated 1/8
    expand: int = 3
    decoder: int = 32
    classes: int = 1  # density + mask channels, one per class
    density_leak: float = 0.0  # leaky density ReLU while training (layers.Heads)


class ShallowCounter(nn.Module):
    def __init__(self, cfg: ShallowConfig):
        super().__init__()
        w, r = cfg.widths, cfg.repeats
        self.stem = nn.Sequential(conv_bn(3, w[0], 3, 2), InvertedResidual(w[0], w[0], expand=1))
        self.stage2 = nn.Sequential(InvertedResidual(w[0], w[1], 2, cfg.expand),
                                    *[InvertedResidual(w[1], w[1], 1, cfg.expand)
                                      for _ in range(r[0] - 1)])
        self.stage3 = nn.Sequential(InvertedResidual(w[1], w[2], 2, cfg.expand),
                                    *[InvertedResidual(w[2], w[2], 1, cfg.expand)
                                      for _ in range(r[1] - 1)])
        self.stage4 = nn.Sequential(*[InvertedResidual(w[2] if i == 0 else w[3], w[3], 1,
                                                       cfg.expand, dilation=2 ** (i % 3 + 1))
                                      for i in range(r[2])])
        self.lateral = conv_bn(w[1], cfg.decoder, 1)
        self.top = conv_bn(w[3], cfg.decoder, 1)
        self.fuse = nn.Sequential(conv_bn(cfg.decoder, cfg.decoder, 3, groups=cfg.decoder),
                                  conv_bn(cfg.decoder, cfg.decoder, 1))
        self.heads = Heads(cfg.decoder, cfg.classes, cfg.density_leak)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(x)[:2]

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """density, mask logits and the deepest features pooled over the tile (N, F): what
        the onboard confidence measures a tile's distance from the training imagery with."""
        f4 = self.stage2(self.stem(x))
        f8 = self.stage4(self.stage3(f4))
        up = F.interpolate(self.top(f8), size=f4.shape[-2:], mode="bilinear",
                           align_corners=False)
        density, mask = self.heads(self.fuse(up + self.lateral(f4)))
        return density, mask, f8.mean(dim=(2, 3))


def shallow_mbv2(cfg: dict) -> nn.Module:
    return ShallowCounter(ShallowConfig(**cfg))


ARCHITECTURES: dict[str, registry.Architecture] = {
    "shallow-mbv2": registry.Architecture("shallow-mbv2", "onboard", shallow_mbv2),
    "shallow-mbv2-small": registry.Architecture(
        "shallow-mbv2-small", "onboard", shallow_mbv2,
        {"widths": (16, 24, 32, 48), "repeats": (2, 2, 2)}),
    # EfficientNet-Lite0 to 1/16 (stages 6-7 dropped: a tile's objects need no 1/32
    # context and they cost a third of the FLOPs) with a depthwise-separable pyramid decoder.
    "effnet-lite0-fpn-light": registry.Architecture(
        "effnet-lite0-fpn-light", "onboard", effnet_fpn,
        {"variant": "lite0", "stages": 5, "decoder": 48, "refine": 1, "light": True}),
    **registry.ARCHITECTURES,
}


def build(name: str, config: dict | None = None, pretrained: bool = False) -> nn.Module:
    """Any architecture training knows (onboard and ground) by its registry name;
    ``pretrained``: its trunk starts from ImageNet weights (``lab.models.pretrained``)."""
    model = registry.build(name, config, ARCHITECTURES)
    if pretrained:
        from lab.models.pretrained import init_pretrained

        init_pretrained(model)
    return model


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


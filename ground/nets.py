"""The counter architectures, in plain PyTorch, behind a registry of names.

Both families map an RGB tile (N, 3, S, S) to two maps at 1/4 resolution: a density map
(non-negative; the tile's count is its sum) and mask logits (object pixels; trained with a
soft Jaccard loss).

- ``shallow-*`` (onboard): MobileNetV2-style inverted residual blocks (depthwise separable
  convolutions), a dilated last stage for context at 1/8, and a light decoder that merges the
  1/4 features back in. Tens of MFLOPs per 256 px tile.
- ``deep-*`` (ground): a residual encoder with dilated last stage, an ASPP module (parallel
  atrous convolutions at several rates plus image pooling: wide context, so a row of parked
  aircraft is seen as such), and a decoder at 1/4 resolution. At least 10x the shallow FLOPs.

The density head ends in a ReLU divided by ``DENSITY_SCALE``: targets are small (an object
spreads over tens of output pixels), so the network works on a scaled copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

DENSITY_SCALE = 100.0
OUTPUT_STRIDE = 4


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
            dilation: int = 1, act: bool = True) -> nn.Sequential:
    pad = dilation * (k // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


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


class Heads(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.density = nn.Conv2d(cin, 1, 1)
        self.mask = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.relu(self.density(x)) / DENSITY_SCALE, self.mask(x)


@dataclass
class ShallowConfig:
    widths: tuple[int, ...] = (16, 32, 48, 64)  # stem/stage1, 1/4, 1/8, dilated 1/8
    repeats: tuple[int, ...] = (2, 3, 2)  # blocks at 1/4, 1/8, dilated 1/8
    expand: int = 3
    decoder: int = 32


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
        self.heads = Heads(cfg.decoder)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f4 = self.stage2(self.stem(x))
        f8 = self.stage4(self.stage3(f4))
        up = F.interpolate(self.top(f8), size=f4.shape[-2:], mode="bilinear",
                           align_corners=False)
        return self.heads(self.fuse(up + self.lateral(f4)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, dilation=dilation)
        self.conv2 = conv_bn(cout, cout, 3, dilation=dilation, act=False)
        self.short = (nn.Identity() if stride == 1 and cin == cout
                      else conv_bn(cin, cout, 1, stride, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.short(x))


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn(cin, cout, 1)] +
                                      [conv_bn(cin, cout, 3, dilation=r) for r in rates])
        self.pool = conv_bn(cin, cout, 1)
        self.project = conv_bn(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


@dataclass
class DeepConfig:
    widths: tuple[int, ...] = (24, 48, 96, 160)  # 1/2, 1/4, 1/8, dilated 1/8
    aspp: int = 96
    rates: tuple[int, ...] = (3, 6, 12)
    decoder: int = 64


class DeepCounter(nn.Module):
    def __init__(self, cfg: DeepConfig):
        super().__init__()
        w = cfg.widths
        self.stem = nn.Sequential(conv_bn(3, w[0], 3, 2), conv_bn(w[0], w[0], 3))
        self.layer1 = nn.Sequential(BasicBlock(w[0], w[1], 2), BasicBlock(w[1], w[1]))
        self.layer2 = nn.Sequential(BasicBlock(w[1], w[2], 2), BasicBlock(w[2], w[2]))
        self.layer3 = nn.Sequential(BasicBlock(w[2], w[3], dilation=2),
                                    BasicBlock(w[3], w[3], dilation=4))
        self.aspp = ASPP(w[3], cfg.aspp, cfg.rates)
        self.lateral = conv_bn(w[1], 32, 1)
        self.decode = nn.Sequential(conv_bn(cfg.aspp + 32, cfg.decoder, 3),
                                    conv_bn(cfg.decoder, cfg.decoder, 3))
        self.heads = Heads(cfg.decoder)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f4 = self.layer1(self.stem(x))
        f8 = self.aspp(self.layer3(self.layer2(f4)))
        up = F.interpolate(f8, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        return self.heads(self.decode(torch.cat([up, self.lateral(f4)], dim=1)))


@dataclass(frozen=True)
class Architecture:
    name: str
    role: str  # "onboard" or "ground"
    build: Callable[[dict], nn.Module]
    defaults: dict = field(default_factory=dict)


def _shallow(cfg: dict) -> nn.Module:
    return ShallowCounter(ShallowConfig(**cfg))


def _deep(cfg: dict) -> nn.Module:
    return DeepCounter(DeepConfig(**cfg))


ARCHITECTURES: dict[str, Architecture] = {
    "shallow-mbv2": Architecture("shallow-mbv2", "onboard", _shallow),
    "shallow-mbv2-small": Architecture("shallow-mbv2-small", "onboard", _shallow,
                                       {"widths": (16, 24, 32, 48), "repeats": (2, 2, 2)}),
    "deep-aspp": Architecture("deep-aspp", "ground", _deep),
}


def build(name: str, config: dict | None = None) -> nn.Module:
    """A network from its registry name; ``config`` overrides the architecture's defaults."""
    try:
        arch = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}") \
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

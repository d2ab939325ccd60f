"""``deep-aspp``, the ground counter: a residual encoder with a dilated last stage, an ASPP
module (parallel atrous convolutions at several rates plus image pooling: wide context, so a
row of parked aircraft is seen as such) and a decoder at 1/4 resolution. At least 10x the
shallow counter's FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ground.nets.layers import Heads, conv_bn


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
    classes: int = 1  # density + mask channels, one per class
    density_leak: float = 0.0  # leaky density ReLU while training (layers.Heads)


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
        self.heads = Heads(cfg.decoder, cfg.classes, cfg.density_leak)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f4 = self.layer1(self.stem(x))
        f8 = self.aspp(self.layer3(self.layer2(f4)))
        up = F.interpolate(f8, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        return self.heads(self.decode(torch.cat([up, self.lateral(f4)], dim=1)))


def deep_aspp(cfg: dict) -> nn.Module:
    return DeepCounter(DeepConfig(**cfg))

"""Building blocks both counter families use: convolution + batch norm + ReLU6, and the two
output heads per class (density, non-negative and scaled by ``DENSITY_SCALE``; mask logits) at
1/``OUTPUT_STRIDE`` of the input resolution.

The density head ends in a ReLU divided by ``DENSITY_SCALE``: targets are small (an object
spreads over tens of output pixels), so the network works on a scaled copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DENSITY_SCALE = 100.0
OUTPUT_STRIDE = 4


def channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its 4-D weights in channels-last (NHWC) layout, in place. oneDNN's CPU
    convolutions are faster on it than on NCHW, for inference and training, with outputs
    equal up to float rounding (``benchmarks/channels_last.py`` measures both layouts)."""
    return model.to(memory_format=torch.channels_last)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """A 4-D input batch in the layout :func:`channels_last` networks run fastest on."""
    return x.contiguous(memory_format=torch.channels_last)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
            dilation: int = 1, act: bool = True) -> nn.Sequential:
    pad = dilation * (k // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class Heads(nn.Module):
    """A density channel and a mask channel per class.

    ``leak`` > 0 gives the density ReLU a leaky gradient while training: a class channel whose
    pre-activations all go negative early in training would otherwise get no gradient again
    and count nothing for good (seen: the deep counter's aircraft channel). Only the gradient
    leaks; the value is the plain ReLU's, as at inference. (A leaky value let negative density
    on background cancel false positives in the training count, which inference's ReLU then
    kept: 0.2-0.3 phantom aircraft per empty tile, measured.)
    """

    def __init__(self, cin: int, classes: int = 1, leak: float = 0.0):
        super().__init__()
        self.density = nn.Conv2d(cin, classes, 1)
        self.mask = nn.Conv2d(cin, classes, 1)
        self.leak = leak

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.density(x)
        if self.training and self.leak:
            # relu(d) in value; slope ``leak`` in gradient where d < 0.
            negative = (d < 0).to(d.dtype)
            d = F.relu(d) + self.leak * negative * (d - d.detach())
        else:
            d = F.relu(d)
        return d / DENSITY_SCALE, self.mask(x)

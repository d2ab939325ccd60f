"""EfficientNet-Lite trunks (Tan & Le 2019, the "Lite" variants for mobile CPUs) and the
density counters built on them.

Trunk: the EfficientNet-B0 stage table (expand, kernel, stride, repeats, width) scaled by a
width and a depth coefficient per variant; the Lite changes: no squeeze-and-excitation,
ReLU6 instead of swish, stem and last stage never scaled. TensorFlow's "same" padding is
kept exactly (stride-2 convolutions pad one pixel more after than before), so the ImageNet
weights the training tooling loads (``lab.pretrained``) compute what they were trained to.
Module names follow those weights' state dicts (``_conv_stem``, ``_blocks.i._expand_conv``,
...), which therefore load strictly. Inputs: sides a multiple of 32.

Counter (``effnet-fpn``): the trunk's features at 1/4, 1/8, 1/16 (and 1/32 when the trunk is
kept whole) merged top-down as in a feature pyramid (1x1 laterals, upsample and add), then
refined at 1/4 by ``refine`` 3x3 convolution blocks (depthwise-separable when ``light``) and
the per-class density and mask heads (``ground.nets.layers.Heads``). Input normalisation:
tiles arrive normalised as ``shared.preprocess`` does (mean 0.45, std 0.22); the network maps
them to the trunk's own range ([-1, 1]) with one fixed affine step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ground.nets.layers import Heads, conv_bn
from shared.preprocess import MEAN, STD

# EfficientNet-B0 stages: expand ratio, kernel, stride, repeats, output channels.
B0_STAGES = ((1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80),
             (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320))
# (width, depth) coefficients of the Lite variants.
LITE_VARIANTS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2),
                 "lite3": (1.2, 1.4), "lite4": (1.4, 1.8)}
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


def same_conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Module:
    """A convolution with TensorFlow "same" padding for even input sides."""
    conv = nn.Conv2d(cin, cout, k, stride, k // 2 if stride == 1 else 0, groups=groups,
                     bias=False)
    if stride == 1:
        return conv
    before = (k - 2) // 2
    return nn.Sequential(nn.ZeroPad2d((before, k - 2 - before, before, k - 2 - before)), conv)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, BN_EPS, BN_MOMENTUM)
        self._depthwise_conv = same_conv(hidden, hidden, k, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, BN_EPS, BN_MOMENTUM)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, BN_EPS, BN_MOMENTUM)
        self.expand, self.residual = expand != 1, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class LiteTrunk(nn.Module):
    """Stem and MBConv blocks of an EfficientNet-Lite up to ``stages`` stages (of 7);
    returns the output of the last block at each stride 4, 8, 16 (and 32)."""

    def __init__(self, variant: str = "lite0", stages: int = 7):
        super().__init__()
        width, depth = LITE_VARIANTS[variant]
        self._conv_stem = same_conv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, BN_EPS, BN_MOMENTUM)
        blocks, taps, cin, stride = [], [], 32, 2
        for i, (expand, k, s, repeats, cout) in enumerate(B0_STAGES[:stages]):
            cout = round_filters(cout, width)
            fixed = i in (0, len(B0_STAGES) - 1)  # Lite: first and last stage not deepened
            n = repeats if fixed else int(math.ceil(depth * repeats))
            for j in range(n):
                blocks.append(MBConv(cin, cout, expand, k, s if j == 0 else 1))
                cin = cout
            stride *= s
            next_stride = stride * (B0_STAGES[i + 1][2] if i + 1 < len(B0_STAGES) else 2)
            if stride >= 4 and (next_stride > stride or i + 1 == stages):
                taps.append((len(blocks) - 1, cout))  # last block before the next stride
        self._blocks = nn.ModuleList(blocks)
        self.taps = [t for t, _ in taps]
        self.channels = [c for _, c in taps]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats


def separable(c: int) -> nn.Sequential:
    return nn.Sequential(conv_bn(c, c, 3, groups=c), conv_bn(c, c, 1))


@dataclass
class EffnetConfig:
    variant: str = "lite0"
    stages: int = 7  # trunk stages kept: 5 ends at 1/16, 7 at 1/32
    decoder: int = 64
    refine: int = 2  # 3x3 blocks at 1/4 after the merge
    light: bool = False  # depthwise-separable refinement (onboard)
    classes: int = 1  # density + mask channels, one per class
    density_leak: float = 0.0


class EffnetCounter(nn.Module):
    def __init__(self, cfg: EffnetConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = LiteTrunk(cfg.variant, cfg.stages)
        d = cfg.decoder
        self.laterals = nn.ModuleList(conv_bn(c, d, 1) for c in self.trunk.channels)
        block = separable if cfg.light else (lambda c: conv_bn(c, c, 3))
        self.refine = nn.Sequential(*[block(d) for _ in range(cfg.refine)])
        self.heads = Heads(d, cfg.classes, cfg.density_leak)
        # Project normalisation (mean 0.45, std 0.22) -> the trunk's [-1, 1].
        self.register_buffer("in_scale", torch.tensor(2 * STD[:, None, None]),
                             persistent=False)
        self.register_buffer("in_shift", torch.tensor(2 * MEAN[:, None, None] - 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(x)[:2]

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """density, mask logits and the deepest features pooled over the tile (N, F)."""
        feats = self.trunk(x * self.in_scale + self.in_shift)
        density, mask = self.decode(feats)
        return density, mask, feats[-1].mean(dim=(2, 3))

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """density and mask logits from the trunk's features (what fine-tuning with the trunk
        frozen trains: ``lab.closed_loop.adapt``)."""
        y = self.laterals[-1](feats[-1])
        for lateral, f in zip(self.laterals[-2::-1], feats[-2::-1], strict=True):
            y = F.interpolate(y, size=f.shape[-2:], mode="bilinear", align_corners=False)
            y = y + lateral(f)
        return self.heads(self.refine(y))


def effnet_fpn(cfg: dict) -> nn.Module:
    return EffnetCounter(EffnetConfig(**cfg))

"""A counter on CRAFT's trunk and decoder (Baek et al. 2019, "Character Region Awareness for
Text Detection"): a heavier ground counter for small, crowded objects.

CRAFT was trained to regress Gaussian heatmaps of characters: small blobs, often in dense
rows, which is what cars in a parking lot and boats at a marina look like from above. Its
network: a VGG16 trunk with batch norm (``conv1_1`` .. ``conv5_2``, then ``fc6`` as a 3x3
convolution of dilation 6 and ``fc7`` as a 1x1, both at 1/16), and a U-Net decoder that
merges the trunk's features at 1/16, 1/8, 1/4 and 1/2 (each step: concatenate, 1x1
convolution, 3x3 convolution, upsample), then four convolutions at 1/2. Here CRAFT's last
1x1 layer (region and affinity scores) is replaced by the per-class density and mask heads
(``ground.nets.layers.Heads``) at 1/2, pooled to the counters' 1/4 (density summed over each
2x2 block, so the count is unchanged; mask logits averaged).

Module names follow CRAFT's published state dict (``basenet.sliceK.i``, ``upconvK.conv.i``,
``conv_cls.i``), so its weights (``lab.models.pretrained``) load strictly. Input
normalisation: tiles arrive normalised as ``shared.preprocess`` does (mean 0.45, std 0.22);
the network maps them to CRAFT's (ImageNet mean and standard deviation) with one fixed affine
step. Inputs: sides a multiple of 16.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ground.nets.layers import Heads
from shared.preprocess import MEAN, STD

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# VGG16 (configuration D) with batch norm: channels per convolution, "M" a 2x2 max pool.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512)
# CRAFT cuts torchvision's feature list into slices at these indices (the output of each
# slice is a skip connection of the decoder; the ReLU after a slice's last batch norm opens
# the next slice, and as CRAFT ran it in place, the skips at 1/2, 1/4 and 1/8 were taken
# after it: ``VggTrunk`` applies it to them explicitly).
SLICES = ((0, 12), (12, 19), (19, 29), (29, 39))


def _vgg_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
        cin = v
    return layers


class VggTrunk(nn.Module):
    """VGG16-BN to ``conv5_2`` and CRAFT's ``fc6``/``fc7``; returns the features at 1/16
    (``fc7``, 1024 channels; ``conv5_2``, 512), 1/8 (512), 1/4 (256) and 1/2 (128)."""

    def __init__(self, frozen_slices: int = 0):
        super().__init__()
        layers = _vgg_layers()
        for k, (a, b) in enumerate(SLICES, start=1):
            self.add_module(f"slice{k}", nn.Sequential(OrderedDict(
                (str(i), layers[i]) for i in range(a, b))))
        self.slice5 = nn.Sequential(nn.MaxPool2d(3, 1, 1),
                                    nn.Conv2d(512, 1024, 3, padding=6, dilation=6),
                                    nn.Conv2d(1024, 1024, 1))
        self.frozen = [getattr(self, f"slice{k}") for k in range(1, frozen_slices + 1)]
        for m in self.frozen:
            m.requires_grad_(False)

    def train(self, mode: bool = True) -> VggTrunk:
        super().train(mode)
        for m in self.frozen:
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k in range(1, 5):
            with torch.set_grad_enabled(torch.is_grad_enabled() and len(self.frozen) < k):
                x = getattr(self, f"slice{k}")(x)
            outs.append(x)
        s2, s4, s8, s16 = outs
        return [self.slice5(s16), s16, F.relu(s8), F.relu(s4), F.relu(s2)]


class DoubleConv(nn.Module):
    """CRAFT's decoder step: ``cin + mid`` channels in, 1x1 to ``mid``, 3x3 to ``cout``."""

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin + mid, mid, 1), nn.BatchNorm2d(mid),
                                  nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 3, padding=1),
                                  nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@dataclass
class CraftConfig:
    classes: int = 1
    density_leak: float = 0.0
    # The trunk's first slices (1/2 to 1/8, most of its cost) are kept as CRAFT trained them:
    # run without gradients, their batch norms in inference mode even while training, so
    # fine-tuning on two CPU cores costs about a forward pass there.
    frozen_slices: int = 3


class CraftCounter(nn.Module):
    def __init__(self, cfg: CraftConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = VggTrunk(cfg.frozen_slices)
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        # CRAFT's conv_cls without its last layer (region and affinity scores).
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 1), nn.ReLU(inplace=True))
        self.heads = Heads(16, cfg.classes, cfg.density_leak)
        # Project normalisation (mean 0.45, std 0.22) -> ImageNet's: x01 = t * STD + MEAN.
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("in_scale", (torch.tensor(STD) / std)[:, None, None].float(),
                             persistent=False)
        self.register_buffer("in_shift", ((torch.tensor(MEAN) - mean) / std)[:, None, None]
                             .float(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(x)[:2]

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """density and mask logits at 1/4, and the deepest features pooled over the tile."""
        feats = self.trunk(x * self.in_scale + self.in_shift)
        density, mask = self.decode(feats)
        return density, mask, feats[0].mean(dim=(2, 3))

    def decode(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        density, mask = self.decode_half(feats)
        # 1/2 -> the counters' 1/4: a 2x2 block's density summed, its mask logits averaged.
        return F.avg_pool2d(density, 2) * 4, F.avg_pool2d(mask, 2)

    def decode_half(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads' density and mask logits at 1/2, before pooling."""
        fc7, s16, s8, s4, s2 = feats
        y = self.upconv1(torch.cat([fc7, s16], dim=1))
        for up, skip in ((self.upconv2, s8), (self.upconv3, s4), (self.upconv4, s2)):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.heads(self.conv_cls(y))


def craft_counter(cfg: dict) -> nn.Module:
    return CraftCounter(CraftConfig(**cfg))

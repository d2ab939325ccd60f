"""Counting each class at its own resolution: one ground network, one pass per input scale.

Small vehicles at the downlinked tiles' GSD (0.5 m: a car is 8-10 px) span few cells of a
counter's feature maps; enlarged 2x they span four times as many, while large aircraft are
counted best at the tiles' own scale. The card's ``extra.class_input_scale`` names the
classes counted from a pass over the input resampled by a factor: an integer (2: enlarged,
for a network trained so: ``train --class-scale``) or one over an integer (0.5: shrunk, for
a network trained on enlarged tiles: ``ModelCard.detail_gsd_m``, ``targetfuse
fit-class-scales``).

Algorithm, per batch of inputs ``x`` (N, 3, S, S): one pass per scale in use (the scale 1
pass only when some class is counted at it). For scale ``s``, ``x`` is resampled to ``s S``
(area when shrinking, bilinear when enlarging) and counted; its classes' maps are brought
to the scale-1 output grid: cells of a shrunk pass split into ``(1/s)^2`` by repetition,
cells of an enlarged pass merge ``s x s`` into one, the density summed and the mask
logits averaged, so each class keeps its count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def by_scale(classes: list[str], class_scale: dict[str, float] | None
             ) -> dict[float, list[int]]:
    """Input scale -> the output channels counted at it (every class at 1 by default)."""
    out: dict[float, list[int]] = {}
    for k, c in enumerate(classes):
        s = float((class_scale or {}).get(c, 1.0))
        if not 0.0 < s <= 8.0 or (round(s) != s and round(1.0 / s) != 1.0 / s):
            raise ValueError(f"class {c!r}: input scale {s} must be an integer or 1 / an "
                             "integer, at most 8")
        out.setdefault(s, []).append(k)
    return out


def per_class_forward(forward: Forward, x: torch.Tensor, scales: dict[float, list[int]]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Density and mask logits of ``x`` with each class's channels from its scale's pass."""
    return passes_forward([(forward, s, channels) for s, channels in scales.items()], x)


def passes_forward(passes: list[tuple[Forward, float, list[int]]], x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Density and mask logits of ``x``, each pass ``(forward, scale, channels)`` giving its
    channels (the passes may be of different networks: ``ground.class_network``); the
    output grid is the first scale-1 pass's (else the first pass's)."""
    density = mask = None
    for forward, s, channels in sorted(passes, key=lambda item: item[1] != 1.0):
        if s < 1.0:
            f = round(1.0 / s)
            d, m = forward(F.interpolate(x, scale_factor=s, mode="area"))
            d = d.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3) / (f * f)
            m = m.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
        elif s > 1.0:
            f = round(s)
            d, m = forward(F.interpolate(x, scale_factor=f, mode="bilinear",
                                         align_corners=False))
            d = F.avg_pool2d(d.float(), f, ceil_mode=True) * (f * f)
            m = F.avg_pool2d(m.float(), f, ceil_mode=True)
        else:
            d, m = forward(x)
        if density is None:
            density, mask = d.clone(), m.clone()
            continue
        h, w = min(density.shape[2], d.shape[2]), min(density.shape[3], d.shape[3])
        density[:, channels] = 0.0
        density[:, channels, :h, :w] = d[:, channels, :h, :w]
        mask[:, channels, :h, :w] = m[:, channels, :h, :w]
    return density, mask

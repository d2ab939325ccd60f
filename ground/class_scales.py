"""Counting each class at its own resolution: one ground network, one pass per input scale.

A ground counter that counts tiles enlarged (its card's ``detail_gsd_m``: downlinked tiles at
the onboard counter's GSD, enlarged 2x to its input) sees small ships and vehicles over
more of its feature maps, but large aircraft fill its crops and it may count them worse
than at the tiles' own scale. The card's ``extra.class_input_scale`` (chosen on validation
by ``targetfuse fit-class-scales``) names the classes counted from a pass over the input
shrunk by a factor (0.5: back to the tiles' own pixels).

Algorithm, per batch of inputs ``x`` (N, 3, S, S): the full-scale pass gives every class's
density and mask logits; for each other scale ``s``, ``x`` is area-resampled to ``s S``,
counted, and its classes' maps are brought back to the full-scale output grid by nearest
repetition (a cell splits into ``(1/s)^2`` cells), the density divided by that number so
each class keeps its count. Classes counted only at a smaller scale skip nothing: the
full pass is needed for the others; when every class is at one scale only that pass runs.
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
        if not 0.0 < s <= 1.0 or round(1.0 / s) != 1.0 / s:
            raise ValueError(f"class {c!r}: input scale {s} must be 1 / an integer")
        out.setdefault(s, []).append(k)
    return out


def per_class_forward(forward: Forward, x: torch.Tensor, scales: dict[float, list[int]]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Density and mask logits of ``x`` with each class's channels from its scale's pass."""
    density = mask = None
    for s, channels in sorted(scales.items(), reverse=True):
        f = round(1.0 / s)
        xs = x if f == 1 else F.interpolate(x, scale_factor=s, mode="area")
        d, m = forward(xs)
        if f != 1:
            d = d.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3) / (f * f)
            m = m.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
        if density is None:
            density, mask = d.clone(), m.clone()
            continue
        h, w = min(density.shape[2], d.shape[2]), min(density.shape[3], d.shape[3])
        density[:, channels] = 0.0
        density[:, channels, :h, :w] = d[:, channels, :h, :w]
        mask[:, channels, :h, :w] = m[:, channels, :h, :w]
    return density, mask

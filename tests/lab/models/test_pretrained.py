"""The ImageNet trunks load strictly and compute what the reference definition computes;
CRAFT's weights fill its counter but the heads."""

import pytest
import torch
import torch.nn.functional as F

from ground.nets.efficientnet_lite import LiteTrunk, effnet_fpn
from lab.models.nets import build
from lab.models.pretrained import _tf_names, init_pretrained, lite_state_dict


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_trunk_matches_the_reference_efficientnet_lite(variant):
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    weights = lite_state_dict(variant)
    ref = reference.EfficientNet.from_name(f"efficientnet-{variant}", image_size=256)
    ref.load_state_dict(weights)
    trunk = LiteTrunk(variant, 7)
    trunk.load_state_dict({k: weights[_tf_names(k)] for k in trunk.state_dict()})
    ref.eval(), trunk.eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref.extract_features(x)
        got = F.relu6(ref._bn1(ref._conv_head(trunk(x)[-1])))
    assert torch.allclose(got, expected, atol=1e-4)


def test_pretrained_build_changes_only_the_trunk():
    torch.manual_seed(0)
    fresh = build("effnet-lite0-fpn-light")
    torch.manual_seed(0)
    loaded = build("effnet-lite0-fpn-light", pretrained=True)
    stem = "trunk._conv_stem.1.weight"
    assert not torch.equal(fresh.state_dict()[stem], loaded.state_dict()[stem])
    assert torch.equal(loaded.state_dict()[stem], lite_state_dict("lite0")["_conv_stem.weight"])
    assert torch.equal(fresh.state_dict()["heads.density.weight"],
                       loaded.state_dict()["heads.density.weight"])


def test_truncated_trunk_taps_strides_4_8_16():
    model = effnet_fpn({"variant": "lite0", "stages": 5, "decoder": 16, "refine": 1,
                        "light": True})
    feats = model.trunk(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4]


def test_no_pretrained_weights_for_other_networks():
    with pytest.raises(TypeError, match="no pretrained trunk"):
        init_pretrained(build("shallow-mbv2"))
    with pytest.raises(ValueError, match="no pretrained weights"):
        lite_state_dict("lite9")


def test_craft_weights_fill_everything_but_the_heads():
    pytest.importorskip("easyocr_en_models")
    from lab.models.pretrained import craft_state_dict

    torch.manual_seed(0)
    fresh = build("craft-unet", {"classes": 3})
    torch.manual_seed(0)
    loaded = build("craft-unet", {"classes": 3}, pretrained=True)
    source = craft_state_dict()
    for key, value in loaded.state_dict().items():
        if key.startswith("heads."):
            assert torch.equal(value, fresh.state_dict()[key])
        else:
            assert torch.equal(value, source[key]), key
    # CRAFT's own last layer (region and affinity scores) is the only weight left unused.
    assert sorted(set(source) - set(loaded.state_dict())) == ["conv_cls.8.bias",
                                                               "conv_cls.8.weight"]

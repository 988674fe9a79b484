"""The nine upstream configs build the published networks: parameter counts and GFLOPs of the
README table, and state_dict keys/shapes of the official checkpoints (spec key lists).
All on the meta device: no memory, no compute."""
import pytest
import torch
from hrnet_cls import cls_hrnet
from hrnet_cls.config import UPSTREAM_NAMES, load_config

from common.testing import upstream_keys

# HRNet/HRNet-Image-Classification README (#Params) and the spec's exact counts; GFLOPs = MACs / 1024^3
PUBLISHED = {
    "w18_small_v1": (13_187_464, 1.49), "w18_small_v2": (15_597_464, 2.42), "w18": (21_299_004, 3.99),
    "w30": (37_712_220, 7.55), "w32": (41_232_680, 8.31), "w40": (57_557_160, 11.8),
    "w44": (67_064_984, 13.9), "w48": (77_469_864, 16.1), "w64": (128_059_944, 26.9),
}


def meta_model(name):
    cfg, _ = load_config(name)
    with torch.device("meta"):
        return cls_hrnet.HighResolutionNet(cfg.MODEL.EXTRA, cfg.MODEL.NUM_CLASSES), cfg


def key_lines(model):
    return [f"{k}\t{tuple(v.shape)}" for k, v in model.state_dict().items()]


def test_nine_configs_exist():
    assert sorted(UPSTREAM_NAMES) == sorted(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_count_and_gflops(name):
    model, cfg = meta_model(name)
    params, gflops = PUBLISHED[name]
    assert cls_hrnet.count_parameters(model) == params
    counted, macs = cls_hrnet.model_cost(cfg)
    assert counted == params
    assert round(macs / 1024 ** 3, 1 if gflops >= 10 else 2) == gflops


@pytest.mark.parametrize("name", ["w18", "w18_small_v1", "w18_small_v2", "w32", "w48"])
def test_state_dict_matches_official_keys(name):
    ref = [f"{k}\t{shape}" for k, shape in upstream_keys(f"hrnet_{name}")]
    model, _ = meta_model(name)
    assert key_lines(model) == ref


@pytest.mark.parametrize("name,width", [("w30", 30), ("w40", 40), ("w44", 44), ("w64", 64)])
def test_other_widths_have_w18_keys_with_their_widths(name, width):
    ref = upstream_keys("hrnet_w18")
    model, _ = meta_model(name)
    sd = model.state_dict()
    assert list(sd) == [k for k, _ in ref]
    assert len(sd) == 1956
    # transition1 makes the C and 2C branches, transition3 the 8C one; the head is width-free
    assert tuple(sd["transition1.0.0.weight"].shape) == (width, 256, 3, 3)
    assert tuple(sd["transition1.1.0.0.weight"].shape) == (2 * width, 256, 3, 3)
    assert tuple(sd["transition3.3.0.0.weight"].shape) == (8 * width, 4 * width, 3, 3)
    assert tuple(sd["incre_modules.3.0.conv1.weight"].shape) == (256, 8 * width, 1, 1)
    assert tuple(sd["classifier.weight"].shape) == (1000, 2048)


def test_fuse_and_head_structure_w18():
    model, _ = meta_model("w18")
    fuse = model.stage4[0].fuse_layers
    assert fuse[0][0] is None and fuse[3][3] is None
    up = fuse[0][3]  # 8C -> C: 1x1 conv, BN, nearest x8
    assert isinstance(up[2], torch.nn.Upsample) and up[2].scale_factor == 8 and up[2].mode == "nearest"
    down = fuse[3][0]  # C -> 8C: three stride-2 3x3 convs, ReLU on all but the last
    assert len(down) == 3
    assert [len(step) for step in down] == [3, 3, 2]
    assert [step[0].out_channels for step in down] == [18, 18, 144]
    assert all(step[0].stride == (2, 2) and step[0].bias is None for step in down)
    assert model.downsamp_modules[0][0].bias is not None and model.final_layer[0].bias is not None
    assert model.transition2[0] is None and model.transition2[1] is None


def test_init_and_forward_shape_tiny():
    cfg, _ = load_config("demo_tiny")
    torch.manual_seed(0)
    model = cls_hrnet.get_cls_net(cfg)
    conv = model.stage2[0].branches[0][0].conv1  # 3x3, 8 -> 8: fan_out = 8*9, std = sqrt(2/72) = 1/6
    assert abs(conv.weight.std().item() - 1 / 6) < 0.03
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10)

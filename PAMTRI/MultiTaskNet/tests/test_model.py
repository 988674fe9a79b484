"""The real-size MultiTaskNet: upstream state_dict keys/shapes and parameter counts (no forward pass)."""
import pytest
import torch
import torchvision
from multitasknet.checkpoints import imagenet_features, infer_config, modernise_keys
from multitasknet.model import MultiTaskNet

from common.errors import UserError
from common.testing import upstream_keys

# common/testing/keys/README.md: keypoint-aware multitask, 576 ids
VARIANTS = {"rgb": (3, 9_874_387), "heatmap": (39, 9_987_283), "segment": (16, 9_915_155),
            "heatmap_segment": (52, 10_028_051)}


def read_keys(name):
    return [(key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()))
            for key, shape in upstream_keys(f"multitasknet_densenet121_{name}")]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_keys_shapes_and_parameter_count(name):
    channels, params = VARIANTS[name]
    model = MultiTaskNet(576, 10, 9, in_channels=channels, keyptaware=True, multitask=True)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == read_keys(name)
    assert sum(p.numel() for p in model.parameters()) == params


def test_other_head_layouts():
    keypt = MultiTaskNet(576, keyptaware=True).state_dict()
    assert keypt["fc.weight"].shape == (1024, 1132) and keypt["classifier_vid.weight"].shape == (576, 1024)
    plain = MultiTaskNet(576).state_dict()
    assert plain["classifier_vid.weight"].shape == (576, 1024) and "fc_vid.weight" not in plain
    multi = MultiTaskNet(576, multitask=True).state_dict()
    assert multi["fc_vid.weight"].shape == (1024, 1024) and multi["fc_vcolor.weight"].shape == (512, 1024)
    for sd, cfg in ((keypt, dict(keyptaware=True, multitask=False)), (plain, dict(keyptaware=False, multitask=False)),
                    (multi, dict(keyptaware=False, multitask=True))):
        got = infer_config(sd)
        assert (got["keyptaware"], got["multitask"], got["in_channels"], got["arch"]) == \
            (cfg["keyptaware"], cfg["multitask"], 3, "densenet121")


def test_widened_first_conv_keeps_the_pretrained_rgb_filters():
    tv = torchvision.models.densenet121()
    torch.nn.init.uniform_(tv.features.conv0.weight, 5.0, 6.0)  # recognisable, far from N(0, 0.02)
    sd = tv.state_dict()
    # torchvision<0.3 names, as in densenet121-a639ec97.pth / upstream checkpoints: norm.1, conv.2, ...
    old = {}
    for k, v in sd.items():
        for a in ("norm", "relu", "conv"):
            for i in ("1", "2"):
                k = k.replace(f".{a}{i}.", f".{a}.{i}.") if "denselayer" in k else k
        old[k] = v
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    torch.manual_seed(0)
    model = MultiTaskNet(576, in_channels=52, keyptaware=True, multitask=True,
                         pretrained_features=imagenet_features(old))
    w = model.base.conv0.weight
    assert w.shape == (64, 52, 7, 7)
    assert torch.equal(w[:, :3], sd["features.conv0.weight"])
    assert abs(w[:, 3:].std().item() - 0.02) < 0.002 and abs(w[:, 3:].mean().item()) < 0.002
    assert torch.equal(model.base.norm5.weight, sd["features.norm5.weight"])


def test_imagenet_features_rejects_other_files():
    with pytest.raises(UserError, match="not a torchvision densenet121"):
        imagenet_features({"features.conv0.weight": torch.zeros(64, 3, 7, 7)})


def test_module_prefix_and_old_names_are_mapped():
    sd = {"module.base.denseblock1.denselayer1.norm.1.weight": 1, "module.fc_vid.bias": 2}
    assert modernise_keys(sd) == {"base.denseblock1.denselayer1.norm1.weight": 1, "fc_vid.bias": 2}


def test_forward_outputs_feature_last():
    model = MultiTaskNet(5, 4, 3, in_channels=39, keyptaware=True, multitask=True, arch="densenet_tiny").eval()
    with torch.no_grad():
        y_id, y_color, y_type, f = model(torch.randn(2, 39, 64, 64), torch.zeros(2, 108))
    assert (y_id.shape, y_color.shape, y_type.shape, f.shape) == ((2, 5), (2, 4), (2, 3), (2, 64))
    with torch.no_grad():  # the retrieval feature is what the id classifier sees
        assert torch.allclose(model.classifier_vid(f), y_id)


def test_upstream_style_checkpoint_loads_for_evaluation(tmp_path):
    """An 8p upstream file: {'state_dict' with `module.` and torchvision-0.2 names, 'rank1', 'epoch'}."""
    from argparse import Namespace

    from multitasknet.checkpoints import load_model_for_eval

    src = MultiTaskNet(7, 5, 4, in_channels=16, keyptaware=True, multitask=True, arch="densenet_tiny")
    sd = {}
    for k, v in src.state_dict().items():
        if "denselayer" in k:
            k = k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2.")
        if not k.endswith("num_batches_tracked"):
            sd["module." + k] = v
    torch.save({"state_dict": sd, "rank1": 0.5, "epoch": 3}, tmp_path / "model_best.pth.tar")
    args = Namespace(heatmapaware=None, segmentaware=None)
    model, _, cfg = load_model_for_eval(str(tmp_path / "model_best.pth.tar"), args)
    assert cfg == dict(arch="densenet_tiny", in_channels=16, multitask=True, num_vids=7, num_colors=5, num_types=4,
                       keyptaware=True)
    assert (args.heatmapaware, args.segmentaware) == (False, True)
    assert torch.equal(model.base.denseblock2.denselayer1.conv2.weight, src.base.denseblock2.denselayer1.conv2.weight)
    with pytest.raises(UserError, match="--heatmapaware True does not match"):
        load_model_for_eval(str(tmp_path / "model_best.pth.tar"), Namespace(heatmapaware=True, segmentaware=None))


def test_channel_flags_invert_num_channels_and_checkpoint_names():
    from multitasknet.checkpoints import Progress, checkpoint_name
    from multitasknet.dataset import channel_flags, num_channels

    for heat in (False, True):
        for seg in (False, True):
            assert channel_flags(num_channels(heat, seg)) == (heat, seg)
    with pytest.raises(UserError, match="expected 3, 39, 16 or 52"):
        channel_flags(4)
    assert checkpoint_name(2, Progress(next_epoch=3)) == "checkpoint_ep3.pth.tar"  # epoch 3 (1-based) complete
    assert checkpoint_name(2, Progress(next_epoch=2, next_step=7)) == "checkpoint_ep3_step7.pth.tar"

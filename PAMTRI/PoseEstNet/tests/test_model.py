"""pose_hrnet: upstream keys and shapes of the real-size model, the ImageNet backbone load."""
import ast
from pathlib import Path

import pytest
import torch
from poseestnet.config import load_config
from poseestnet.pose_hrnet import get_pose_net

from common.errors import UserError
from common.testing import upstream_keys

TINY = Path(__file__).resolve().parents[1] / "experiments" / "veri" / "hrnet" / "demo_tiny.yaml"
BACKBONE = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
            "transition3", "stage4")


def reference():
    """HRNet-W32 (classification) keys and shapes, from the list kept in the repo (common/testing/keys)."""
    return {k: tuple(ast.literal_eval(shape)) for k, shape in upstream_keys("hrnet_w32")}


def test_real_size_keys_match_hrnet_w32_backbone_and_head():
    model = get_pose_net(load_config())  # the upstream yaml: W32, 36 joints
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = {k: s for k, s in reference().items() if k.split(".")[0] in BACKBONE}
    # the pose net's last stage-4 module keeps only the highest resolution output
    dropped = {k for k in ref if k.startswith("stage4.2.fuse_layers.") and k.split(".")[3] in "123"}
    expected = {k: s for k, s in ref.items() if k not in dropped}
    expected["final_layer.weight"] = (36, 32, 1, 1)
    expected["final_layer.bias"] = (36,)
    assert own == expected
    # trainable parameters: those of the reference backbone (no BN buffers) plus the 1x1 head
    n_ref = sum(int(torch.tensor(s).prod()) if s else 1 for k, s in expected.items()
                if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert sum(p.numel() for p in model.parameters()) == n_ref
    assert n_ref - (36 * 32 + 36) == sum(int(torch.tensor(s).prod()) for k, s in ref.items() if k not in dropped
                                          and not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


def test_imagenet_backbone_load_skips_head(tmp_path):
    cfg = load_config(str(TINY))
    donor = get_pose_net(cfg)
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in donor.state_dict().items()}
    state["final_layer.weight"] = torch.zeros(1000, 16, 1, 1)  # the classifier's own final_layer: other shape
    state["classifier.weight"] = torch.zeros(1000, 2048)
    path = tmp_path / "hrnet_tiny_imagenet.pth"
    torch.save(state, path)
    cfg.defrost()
    cfg.MODEL.PRETRAINED = str(path)
    cfg.MODEL.EXTRA.PRETRAINED_LAYERS = ["conv1", "bn1", "layer1", "stage4"]
    cfg.freeze()
    model = get_pose_net(cfg, is_train=True, log=lambda *a: None)
    sd = model.state_dict()
    assert torch.all(sd["conv1.weight"] == 0.5) and torch.all(sd["stage4.0.branches.0.0.conv1.weight"] == 0.5)
    assert not torch.all(sd["conv2.weight"] == 0.5)  # not listed in PRETRAINED_LAYERS
    assert sd["final_layer.weight"].abs().max() < 0.01  # N(0, 0.001) init kept


def test_pretrained_without_matching_keys_is_a_user_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    cfg = load_config(str(TINY), ["MODEL.PRETRAINED", str(path)])
    with pytest.raises(UserError, match="no HRNet backbone keys"):
        get_pose_net(cfg, is_train=True, log=lambda *a: None)


def test_tiny_forward_shape():
    cfg = load_config(str(TINY))
    out = get_pose_net(cfg)(torch.zeros(2, 3, 128, 128))
    assert out.shape == (2, 36, 32, 32)

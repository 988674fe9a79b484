"""MultiTaskNet: DenseNet feature extractor + vehicle id / colour / type heads.

state_dict keys are upstream's: `base.<torchvision densenet features key>`, `fc_vid`,
`fc_vcolor`, `fc_vtype`, `classifier_{vid,vcolor,vtype}` (or `fc` for keypoint-only).
"""
import re

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from common.errors import UserError

NUM_KEYPOINT_VALUES = 108

# Backbone configs as data. `densenet121` is upstream's; `densenet_tiny` keeps the same
# structure at a toy size for tests and CPU demos (its weights fit no upstream checkpoint).
ARCHS = {
    "densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                        vid_dim=1024, attr_dim=512),
    "densenet_tiny": dict(growth_rate=8, block_config=(1, 1, 1, 1), num_init_features=16, bn_size=2,
                          vid_dim=64, attr_dim=32),
}


class MultiTaskNet(nn.Module):
    """forward(x, keypoints=None) returns, in train and eval alike:
    multitask: (y_id, y_color, y_type, f_vid); keypoint-only: (y_id, f); neither: (y_id, f).
    The last output is the 1024-d retrieval feature (no normalisation)."""

    def __init__(self, num_vids: int, num_colors: int = 10, num_types: int = 9, in_channels: int = 3,
                 keyptaware: bool = False, multitask: bool = False, arch: str = "densenet121",
                 pretrained_features: dict | None = None):
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"unknown --arch {arch}, expected one of {', '.join(ARCHS)}")
        cfg = ARCHS[arch]
        self.arch, self.keyptaware, self.multitask = arch, bool(keyptaware), bool(multitask)
        self.in_channels = int(in_channels)
        densenet = torchvision.models.DenseNet(growth_rate=cfg["growth_rate"], block_config=cfg["block_config"],
                                               num_init_features=cfg["num_init_features"], bn_size=cfg["bn_size"])
        self.base = densenet.features  # ends at BN norm5, no ReLU
        if pretrained_features is not None:
            self.base.load_state_dict(pretrained_features)
        if self.in_channels != 3:
            self._widen_first_conv(self.in_channels)
        feat_dim = densenet.classifier.in_features
        in_dim = feat_dim + NUM_KEYPOINT_VALUES * self.keyptaware
        vid_dim, attr_dim = cfg["vid_dim"], cfg["attr_dim"]
        if self.multitask:
            self.fc_vid = nn.Linear(in_dim, vid_dim)
            self.fc_vcolor = nn.Linear(in_dim, attr_dim)
            self.fc_vtype = nn.Linear(in_dim, attr_dim)
            self.classifier_vid = nn.Linear(vid_dim, num_vids)
            self.classifier_vcolor = nn.Linear(attr_dim, num_colors)
            self.classifier_vtype = nn.Linear(attr_dim, num_types)
            self.feat_dim = vid_dim
        elif self.keyptaware:
            self.fc = nn.Linear(in_dim, vid_dim)
            self.classifier_vid = nn.Linear(vid_dim, num_vids)
            self.feat_dim = vid_dim
        else:
            self.classifier_vid = nn.Linear(feat_dim, num_vids)
            self.feat_dim = feat_dim

    def _widen_first_conv(self, in_channels: int) -> None:
        """Upstream: a new conv drawn from N(0, 0.02) whose RGB slice is the (pretrained) 3-channel conv0."""
        old = self.base.conv0
        new = nn.Conv2d(in_channels, old.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            new.weight.normal_(0.0, 0.02)
            new.weight[:, :3] = old.weight
        self.base.conv0 = new

    def forward(self, x, keypoints=None):
        f = F.adaptive_avg_pool2d(self.base(x), 1).flatten(1)
        if self.keyptaware:
            if keypoints is None:
                raise ValueError("this model is keypoint-aware: forward(x, keypoints) needs the (N,108) keypoints")
            f = torch.cat((f, keypoints.to(f.dtype)), dim=1)
        if self.multitask:
            f_vid = F.leaky_relu(self.fc_vid(f))
            f_color = F.leaky_relu(self.fc_vcolor(f))
            f_type = F.leaky_relu(self.fc_vtype(f))
            return self.classifier_vid(f_vid), self.classifier_vcolor(f_color), self.classifier_vtype(f_type), f_vid
        if self.keyptaware:
            f = F.leaky_relu(self.fc(f))
        return self.classifier_vid(f), f


# -- loading weights ------------------------------------------------------------------------

_OLD_DENSE = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
                        r"((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def modernise_keys(state_dict: dict) -> dict:
    """Strip `module.`, map torchvision<0.3 DenseNet names (`norm.1`) to current ones (`norm1`)."""
    out = {}
    for k, v in state_dict.items():
        k = k[len("module."):] if k.startswith("module.") else k
        m = _OLD_DENSE.match(k)
        if m:
            k = m.group(1) + m.group(2)
        out[k] = v
    return out


def unwrap_checkpoint(obj) -> dict:
    """The state_dict inside a checkpoint file (ours, upstream's {'state_dict': ...}, or a bare one)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "net"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise UserError("the file holds no model state_dict")


def imagenet_features(state_dict: dict, arch: str = "densenet121") -> dict:
    """torchvision ImageNet DenseNet weights (`features.*`, e.g. densenet121-a639ec97.pth) as
    a state_dict for `base`. Also accepts a MultiTaskNet checkpoint (`base.*`)."""
    sd = modernise_keys(state_dict)
    feats = {}
    for k, v in sd.items():
        for prefix in ("features.", "base."):
            if k.startswith(prefix):
                feats[k[len(prefix):]] = v
    template = MultiTaskNet(1, arch=arch).base.state_dict()
    for k, v in template.items():
        if k.endswith("num_batches_tracked") and k not in feats:
            feats[k] = torch.zeros_like(v)
    missing = [k for k in template if k not in feats]
    if missing:
        raise UserError(f"pretrained file is not a torchvision {arch}: {len(missing)} backbone keys missing "
                        f"(e.g. features.{missing[0]})")
    feats = {k: feats[k] for k in template}
    if tuple(feats["conv0.weight"].shape[1:]) != (3, 7, 7):
        feats["conv0.weight"] = feats["conv0.weight"][:, :3]  # a widened MultiTaskNet conv0: keep RGB
    bad = [k for k in template if tuple(feats[k].shape) != tuple(template[k].shape)]
    if bad:
        raise UserError(f"pretrained file does not fit {arch}: {bad[0]} has shape {tuple(feats[bad[0]].shape)}, "
                        f"expected {tuple(template[bad[0]].shape)}")
    return feats


def infer_config(state_dict: dict) -> dict:
    """Model constructor arguments from a MultiTaskNet state_dict (ours or upstream's)."""
    sd = modernise_keys(state_dict)
    if "base.conv0.weight" not in sd or "classifier_vid.weight" not in sd:
        raise UserError("not a MultiTaskNet checkpoint: base.conv0.weight / classifier_vid.weight missing")
    blocks = []
    for b in range(1, 5):
        layers = {int(m.group(1)) for k in sd for m in [re.match(rf"base\.denseblock{b}\.denselayer(\d+)\.", k)] if m}
        blocks.append(max(layers) if layers else 0)
    arch = None
    for name, cfg in ARCHS.items():
        if tuple(cfg["block_config"]) == tuple(blocks) and sd["base.conv0.weight"].shape[0] == cfg["num_init_features"]:
            arch = name
    if arch is None:
        raise UserError(f"checkpoint backbone (dense blocks {blocks}) matches none of {', '.join(ARCHS)}")
    multitask = "fc_vcolor.weight" in sd
    keypt_in = sd["fc_vid.weight"].shape[1] if multitask else (sd["fc.weight"].shape[1] if "fc.weight" in sd else 0)
    cfg = dict(arch=arch, in_channels=int(sd["base.conv0.weight"].shape[1]), multitask=multitask,
               num_vids=int(sd["classifier_vid.weight"].shape[0]),
               num_colors=int(sd["classifier_vcolor.weight"].shape[0]) if multitask else 10,
               num_types=int(sd["classifier_vtype.weight"].shape[0]) if multitask else 9)
    feat_dim = sd["base.norm5.weight"].shape[0]
    cfg["keyptaware"] = bool(keypt_in) and keypt_in == feat_dim + NUM_KEYPOINT_VALUES or "fc.weight" in sd
    return cfg

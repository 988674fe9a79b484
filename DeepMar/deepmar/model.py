"""DeepMAR: ResNet-50 (torchvision layout, under `base.`) + GAP + dropout + Linear.

Key names match upstream checkpoints: `base.conv1.weight`, `base.layer1.0.conv1.weight`,
..., `classifier.weight`. `resnet50` is the real model; `resnet50_tiny` (one block per
stage, width 16) exists only to keep tests and the demo fast on a CPU.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import strip_prefix
from common.errors import UserError

ARCHS = {
    # name: (blocks per stage, base width)
    "resnet50": ((3, 4, 6, 3), 64),
    "resnet50_tiny": ((1, 1, 1, 1), 16),
}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)  # stride on the 3x3
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """ResNet up to layer4 (no avgpool, no fc). `last_conv_stride` sets layer4's stride."""

    def __init__(self, blocks=(3, 4, 6, 3), width=64, last_conv_stride=2):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        strides = (1, 2, 2, last_conv_stride)
        for i, (n, s) in enumerate(zip(blocks, strides)):
            setattr(self, f"layer{i + 1}", self._make_layer(width * 2 ** i, n, s))
        self.out_channels = self.inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He-normal on fan-out, as upstream's resnet.py
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class DeepMAR(nn.Module):
    def __init__(self, num_att=35, arch="resnet50", last_conv_stride=2, drop_pool5=True, drop_pool5_rate=0.5):
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"unknown --arch '{arch}', expected one of {', '.join(ARCHS)}")
        blocks, width = ARCHS[arch]
        self.base = ResNetBackbone(blocks, width, last_conv_stride)
        self.drop_pool5 = drop_pool5
        self.drop_pool5_rate = drop_pool5_rate
        self.classifier = nn.Linear(self.base.out_channels, num_att)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        x = self.base(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        if self.drop_pool5:
            x = F.dropout(x, p=self.drop_pool5_rate, training=self.training)
        return self.classifier(x)

    def param_groups(self):
        """[finetuned, new]: 'new' is every parameter whose name contains 'classifier'."""
        new, finetuned = [], []
        for name, p in self.named_parameters():
            (new if "classifier" in name else finetuned).append(p)
        return finetuned, new


def load_imagenet_backbone(model: DeepMAR, path: str) -> int:
    """Load torchvision ImageNet ResNet-50 weights (e.g. resnet50-19c8e357.pth) into `base`,
    dropping `fc.*`. Returns the number of tensors loaded."""
    from common.checkpoint import load, load_state_dict_checked, require_dict

    what = "pretrained weights (--pretrained_path)"
    state = require_dict(load(path, what=what), path, what)
    if "state_dict" in state:
        state = require_dict(state["state_dict"], path, what + " entry 'state_dict' of")
    state = {k: v for k, v in strip_prefix(state).items() if not str(k).startswith("fc.")}
    load_state_dict_checked(model.base, state, what=f"pretrained weights {path}")
    return len(state)


def infer_arch(state_dict):
    """The ARCHS entry whose stem width and blocks per stage fit a state_dict (None if none)."""
    state_dict = strip_prefix(state_dict)
    if "base.conv1.weight" not in state_dict:
        return None
    width = state_dict["base.conv1.weight"].shape[0]
    blocks = tuple(len({k.split(".")[2] for k in state_dict if k.startswith(f"base.layer{i}.")}) for i in range(1, 5))
    for name, spec in ARCHS.items():
        if spec == (blocks, width):
            return name
    return None


def extract_state_dict(obj, what="checkpoint"):
    """Model weights from any checkpoint layout we or upstream write: DM `ckpt_epoch*.pth`
    ({'state_dicts': [model, optim], ...}), AZ `checkpoint.path.tar` ({'state_dict': ...}),
    our resume checkpoint ({'model': ...}) or a bare state_dict. Anything else is one line."""
    expected = "expected 'state_dicts' (upstream ckpt_epoch), 'state_dict', 'model' or a bare state_dict"
    if not isinstance(obj, dict):
        raise UserError(f"{what} holds a {type(obj).__name__}: no DeepMar state_dict ({expected})")
    if "state_dicts" in obj:
        sds = obj["state_dicts"]
        if isinstance(sds, (list, tuple)) and sds and isinstance(sds[0], dict):
            return sds[0]
        raise UserError(f"{what}: 'state_dicts' holds a {type(sds).__name__}, expected [model state_dict, "
                        "optimizer state_dict] (upstream ckpt_epoch layout)")
    for key in ("model", "state_dict"):
        if key in obj and isinstance(obj[key], dict):
            return obj[key]
    if obj and all(torch.is_tensor(v) for v in obj.values()):
        return obj
    raise UserError(f"{what} holds no DeepMar state_dict ({expected})")

"""AlignedReID model: ResNet backbone (last stride 2), global feature, 8-stripe local branch, ID fc.

State-dict names are upstream's (`base.*`, `local_conv.*`, `local_bn.*`, `fc.*`), so the
released weights and Ascend checkpoints load unchanged.
"""
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from common.errors import UserError

# name -> (block, layers, stage widths); 'tiny' (a narrow ResNet-10) exists for tests and the demo only
TORCHVISION_WIDTHS = (64, 128, 256, 512)
ARCHS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2), TORCHVISION_WIDTHS),
    "resnet34": (BasicBlock, (3, 4, 6, 3), TORCHVISION_WIDTHS),
    "resnet50": (Bottleneck, (3, 4, 6, 3), TORCHVISION_WIDTHS),
    "resnet101": (Bottleneck, (3, 4, 23, 3), TORCHVISION_WIDTHS),
    "resnet152": (Bottleneck, (3, 8, 36, 3), TORCHVISION_WIDTHS),
    "tiny": (BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128)),
}
LOCAL_CHANNELS = 128


class Backbone(ResNet):
    """torchvision ResNet without avgpool/fc; forward returns the layer4 map (stride 32)."""

    def __init__(self, arch: str):
        block, layers, widths = ARCHS[arch]
        if widths == TORCHVISION_WIDTHS:
            super().__init__(block, list(layers))
            del self.avgpool, self.fc
        else:  # same module names, narrower stages (torchvision's builder takes no widths)
            nn.Module.__init__(self)
            self._norm_layer, self.inplanes, self.dilation, self.groups, self.base_width = \
                nn.BatchNorm2d, widths[0], 1, 1, 64
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            for i, (wd, n) in enumerate(zip(widths, layers)):
                setattr(self, f"layer{i + 1}", self._make_layer(block, wd, n, stride=1 if i == 0 else 2))
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.out_channels = widths[3] * block.expansion

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class AlignedReID(nn.Module):
    def __init__(self, num_classes: int = 751, arch: str = "resnet50", local_channels: int = LOCAL_CHANNELS):
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"unknown --arch '{arch}', expected one of {', '.join(ARCHS)}")
        self.arch = arch
        self.base = Backbone(arch)
        c = self.base.out_channels
        self.local_conv = nn.Conv2d(c, local_channels, 1)
        self.local_bn = nn.BatchNorm2d(local_channels)
        self.fc = nn.Linear(c, num_classes)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.constant_(self.fc.bias, 0)

    def forward(self, x):
        feat = self.base(x)
        global_feat = feat.mean(dim=(2, 3))  # avg_pool2d over the whole map, export-friendly
        # stripes: average over the width only, one 128-d vector per row of the map
        local = F.relu(self.local_bn(self.local_conv(feat.mean(dim=3, keepdim=True))))
        local_feat = local.squeeze(3).permute(0, 2, 1)
        logits = self.fc(global_feat)
        return global_feat, local_feat, logits


def load_pretrained_backbone(model: AlignedReID, path: str) -> None:
    """ImageNet ResNet weights (torchvision names, e.g. resnet50-19c8e357.pth); fc.* is dropped.
    Read as data (common.checkpoint.load); a file of another shape is one line."""
    import torch

    from common.checkpoint import load, require_dict, strip_prefix

    what = "--pretrained_path"
    sd = require_dict(load(path, what=what), path, what)
    if "state_dict" in sd:
        sd = require_dict(sd["state_dict"], path, what)
    sd = {k: v for k, v in strip_prefix(sd).items() if not str(k).startswith("fc.")}
    own = model.base.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    bad = [k for k in own if k in sd and (not torch.is_tensor(sd[k]) or tuple(sd[k].shape) != tuple(own[k].shape))]
    if missing or bad:
        first = (missing or bad)[0]
        raise UserError(f"{what} {path} does not fit the {model.arch} backbone ({len(missing)} missing, "
                        f"{len(bad)} wrong-shape or non-tensor keys, e.g. {first}); expected torchvision ImageNet "
                        f"ResNet weights (resnet50-19c8e357.pth for resnet50)")
    model.base.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)

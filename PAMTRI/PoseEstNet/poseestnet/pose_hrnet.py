"""HRNet pose network (`pose_hrnet`), architecture read from the config, state_dict keys as
upstream (`conv1 bn1 conv2 bn2 layer1 transition1 stage2 ... stage4 final_layer`)."""
import os

import torch
from torch import nn

from common.errors import UserError

BN_MOMENTUM = 0.1


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_blocks(block, inplanes, planes, num_blocks, stride=1):
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then every output resolution sums all inputs (upsampled by nearest
    neighbour after a 1x1 conv, or downsampled by strided 3x3 convs)."""

    def __init__(self, num_branches, block, num_blocks, num_inchannels, num_channels, multi_scale_output=True):
        super().__init__()
        if not (num_branches == len(num_blocks) == len(num_inchannels) == len(num_channels)):
            raise UserError(f"HRNet stage config: NUM_BRANCHES {num_branches} does not match "
                            f"NUM_BLOCKS {list(num_blocks)} / NUM_CHANNELS {list(num_channels)}")
        self.num_branches = num_branches
        self.multi_scale_output = multi_scale_output
        self.num_inchannels = list(num_inchannels)
        branches = []
        for i in range(num_branches):
            branches.append(make_blocks(block, self.num_inchannels[i], num_channels[i], num_blocks[i]))
            self.num_inchannels[i] = num_channels[i] * block.expansion
        self.branches = nn.ModuleList(branches)
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self):
        if self.num_branches == 1:
            return None
        n, ch = self.num_branches, self.num_inchannels
        fuse = []
        for i in range(n if self.multi_scale_output else 1):
            row = []
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False),
                                             nn.BatchNorm2d(ch[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = ch[i] if last else ch[j]
                        layers = [conv3x3(ch[j], cout, 2), nn.BatchNorm2d(cout)]
                        if not last:
                            layers.append(nn.ReLU(inplace=True))
                        steps.append(nn.Sequential(*layers))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        return nn.ModuleList(fuse)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.num_branches == 1:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


class PoseHighResolutionNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        extra = cfg.MODEL.EXTRA
        stem = int(extra.get("STEM_CHANNELS", 64))
        layer1_blocks = int(extra.get("LAYER1_NUM_BLOCKS", 4))
        self.pretrained_layers = list(extra.get("PRETRAINED_LAYERS", ["*"]))
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, stem, stem, layer1_blocks)
        pre = [stem * Bottleneck.expansion]
        self.stage_cfgs = []
        for s in (2, 3, 4):
            scfg = extra[f"STAGE{s}"]
            block = BLOCKS[scfg["BLOCK"]]
            channels = [c * block.expansion for c in scfg["NUM_CHANNELS"]]
            setattr(self, f"transition{s - 1}", self._make_transition(pre, channels))
            stage, pre = self._make_stage(scfg, channels, multi_scale_output=(s != 4))
            setattr(self, f"stage{s}", stage)
            self.stage_cfgs.append(scfg)
        k = int(extra["FINAL_CONV_KERNEL"])
        self.final_layer = nn.Conv2d(pre[0], cfg.MODEL.NUM_JOINTS, k, 1, 1 if k == 3 else 0)

    @staticmethod
    def _make_transition(pre, cur):
        layers = []
        for i, c in enumerate(cur):
            if i < len(pre):
                if c != pre[i]:
                    layers.append(nn.Sequential(conv3x3(pre[i], c), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
                else:
                    layers.append(None)
            else:
                downs = []
                for j in range(i + 1 - len(pre)):
                    cin = pre[-1]
                    cout = c if j == i - len(pre) else cin
                    downs.append(nn.Sequential(conv3x3(cin, cout, 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*downs))
        return nn.ModuleList(layers)

    @staticmethod
    def _make_stage(scfg, inchannels, multi_scale_output=True):
        block = BLOCKS[scfg["BLOCK"]]
        modules = []
        for m in range(scfg["NUM_MODULES"]):
            last_single = not multi_scale_output and m == scfg["NUM_MODULES"] - 1
            module = HighResolutionModule(scfg["NUM_BRANCHES"], block, scfg["NUM_BLOCKS"], inchannels,
                                          scfg["NUM_CHANNELS"], multi_scale_output=not last_single)
            modules.append(module)
            inchannels = module.num_inchannels
        return nn.Sequential(*modules), inchannels

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s in (2, 3, 4):
            transition = getattr(self, f"transition{s - 1}")
            xs = []
            for i, t in enumerate(transition):
                # new (lower-resolution) branches grow from the lowest existing one
                src = ys[i] if i < len(ys) else ys[-1]
                xs.append(t(src) if t is not None else src)
            ys = getattr(self, f"stage{s}")(xs)
        return self.final_layer(ys[0])

    def init_weights(self, pretrained="", log=print):
        """N(0, 0.001) convs, unit BN; then the ImageNet HRNet-C weights for the backbone layers
        listed in PRETRAINED_LAYERS (never the classifier head nor its `final_layer`)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if not pretrained:
            log("=> no ImageNet weights given (MODEL.PRETRAINED / --pre_ckpt_path): random init")
            return 0
        if not os.path.isfile(pretrained):
            raise UserError(f"pretrained HRNet weights not found: {pretrained} (MODEL.PRETRAINED / --pre_ckpt_path; "
                            "--pre_trained False starts from random init)")
        from common.checkpoint import require_dict, strip_prefix

        from .weights import load_file

        state = require_dict(load_file(pretrained, "pretrained HRNet weights"), pretrained, "pretrained HRNet weights")
        if isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        state = {k: v for k, v in strip_prefix(state).items() if torch.is_tensor(v)}
        own = self.state_dict()
        take = {}
        for k, v in state.items():
            if k.split(".")[0] in self.pretrained_layers or self.pretrained_layers[0] == "*":
                if k in own and tuple(own[k].shape) == tuple(v.shape):
                    take[k] = v
        if not take:
            raise UserError(f"{pretrained} has no HRNet backbone keys of this model's shapes "
                            f"(expected e.g. conv1.weight {tuple(own['conv1.weight'].shape)})")
        self.load_state_dict(take, strict=False)
        log(f"=> loaded {len(take)} ImageNet tensors from {pretrained}")
        return len(take)


def get_pose_net(cfg, is_train=False, log=print):
    model = PoseHighResolutionNet(cfg)
    if is_train and cfg.MODEL.INIT_WEIGHTS:
        model.init_weights(cfg.MODEL.PRETRAINED, log=log)
    elif is_train:
        model.init_weights("", log=log)
    return model

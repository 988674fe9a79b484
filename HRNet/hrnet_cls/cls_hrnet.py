"""HRNet-C, the ImageNet classification network of HRNet/HRNet-Image-Classification
(lib/models/cls_hrnet.py), built from a config's MODEL.EXTRA stage blocks.

Module names, their order and the `None` slots are upstream's, so the official
`hrnetv2_w*_imagenet_pretrained.pth` files (and timm's `hrnet_w18*` weights) load with
strict=True: W-C nets have 1,956 state_dict entries, small_v1 552, small_v2 990.
"""
import torch
import torch.nn as nn

BN_MOMENTUM = 0.1
HEAD_CHANNELS = (32, 64, 128, 256)  # Bottleneck planes of incre_modules -> 128/256/512/1024 channels
FINAL_CHANNELS = 2048


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv_bn(in_ch, out_ch, kernel, stride, relu, bias=False):
    """Sequential(conv, BN[, ReLU]): the index layout (0 conv, 1 bn) of upstream's state_dict."""
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=bias),
              nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


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
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_layer(block, inplanes, planes, num_blocks, stride=1):
    """`num_blocks` blocks; the first gets a 1x1 conv + BN shortcut when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then every output resolution sums all inputs (exchange unit)."""

    def __init__(self, block, num_blocks, in_channels, num_channels):
        super().__init__()
        self.num_branches = len(num_channels)
        self.branches = nn.ModuleList(
            make_layer(block, in_channels[b], num_channels[b], num_blocks[b]) for b in range(self.num_branches))
        self.out_channels = [c * block.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers() if self.num_branches > 1 else None
        self.relu = nn.ReLU(inplace=False)

    def _make_fuse_layers(self):
        ch = self.out_channels
        fuse = []
        for i in range(self.num_branches):
            row = []
            for j in range(self.num_branches):
                if j > i:  # lower resolution: 1x1 conv to C_i, then nearest upsample
                    row.append(nn.Sequential(
                        nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(ch[i], momentum=BN_MOMENTUM),
                        nn.Upsample(scale_factor=2 ** (j - i), mode='nearest')))
                elif j == i:
                    row.append(None)
                else:  # higher resolution: i-j stride-2 convs; only the last changes width, and has no ReLU
                    steps = [conv_bn(ch[j], ch[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    steps.append(conv_bn(ch[j], ch[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        return nn.ModuleList(fuse)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.num_branches == 1:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            # upstream's summation order: start from branch 0, add j = 1..n-1
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


class HighResolutionNet(nn.Module):
    def __init__(self, extra, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

        s1 = extra["STAGE1"]
        block = BLOCKS[s1["BLOCK"]]
        self.layer1 = make_layer(block, 64, s1["NUM_CHANNELS"][0], s1["NUM_BLOCKS"][0])
        channels = [block.expansion * s1["NUM_CHANNELS"][0]]

        for k in (2, 3, 4):
            cfg = extra[f"STAGE{k}"]
            block = BLOCKS[cfg["BLOCK"]]
            wanted = [c * block.expansion for c in cfg["NUM_CHANNELS"]]
            setattr(self, f"transition{k - 1}", self._make_transition(channels, wanted))
            modules = []
            for _ in range(cfg["NUM_MODULES"]):
                modules.append(HighResolutionModule(block, cfg["NUM_BLOCKS"], wanted, cfg["NUM_CHANNELS"]))
                wanted = modules[-1].out_channels
            setattr(self, f"stage{k}", nn.Sequential(*modules))
            channels = wanted

        self.incre_modules, self.downsamp_modules, self.final_layer = self._make_head(channels)
        self.classifier = nn.Linear(FINAL_CHANNELS, num_classes)

    @staticmethod
    def _make_transition(pre, cur):
        layers = []
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(conv_bn(pre[i], c, 3, 1, relu=True) if c != pre[i] else None)
            else:  # a new, lower-resolution branch grows from the previous stage's last branch
                steps = [conv_bn(pre[-1], pre[-1], 3, 2, relu=True) for _ in range(i - len(pre))]
                steps.append(conv_bn(pre[-1], c, 3, 2, relu=True))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    @staticmethod
    def _make_head(channels):
        incre = nn.ModuleList(make_layer(Bottleneck, c, HEAD_CHANNELS[i], 1) for i, c in enumerate(channels))
        widths = [h * Bottleneck.expansion for h in HEAD_CHANNELS]
        downsamp = nn.ModuleList(conv_bn(widths[i], widths[i + 1], 3, 2, relu=True, bias=True)
                                 for i in range(len(channels) - 1))
        final = conv_bn(widths[3], FINAL_CHANNELS, 1, 1, relu=True, bias=True)
        return incre, downsamp, final

    @staticmethod
    def _transit(transition, ys):
        # upstream feeds every non-None transition the previous stage's LAST branch (for
        # transition1 that is the layer1 output); None slots pass their branch through
        return [ys[i] if t is None else t(ys[-1]) for i, t in enumerate(transition)]

    def forward_features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._transit(self.transition1, [x]))
        ys = self.stage3(self._transit(self.transition2, ys))
        ys = self.stage4(self._transit(self.transition3, ys))
        y = self.incre_modules[0](ys[0])
        for i, down in enumerate(self.downsamp_modules):
            y = self.incre_modules[i + 1](ys[i + 1]) + down(y)
        return self.final_layer(y)

    def forward(self, x):
        y = self.forward_features(x)
        y = y.mean(dim=(2, 3))  # = upstream's avg_pool2d over the whole map (and its traced form)
        return self.classifier(y)

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def get_cls_net(cfg, num_classes=None):
    """Upstream's constructor: the network of `cfg.MODEL.EXTRA`, kaiming-initialised."""
    model = HighResolutionNet(cfg.MODEL.EXTRA, cfg.MODEL.NUM_CLASSES if num_classes is None else num_classes)
    model.init_weights()
    return model


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _same(x):
    return x


def model_cost(cfg) -> tuple[int, int]:
    """(trainable parameters, conv+linear multiply-adds of one image at MODEL.IMAGE_SIZE), counted
    as upstream's get_model_summary does (conv: weight numel x output H*W; linear: in x out).
    Built and run on the meta device, so even W64 costs no memory or compute."""
    macs = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            macs[0] += module.weight.numel() * output.shape[2] * output.shape[3]
        else:
            macs[0] += module.in_features * module.out_features

    with torch.device("meta"):
        model = HighResolutionNet(cfg.MODEL.EXTRA, cfg.MODEL.NUM_CLASSES)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
        elif isinstance(m, nn.BatchNorm2d):  # no multiply-adds counted; on meta tensors its decomposition is slow
            m.forward = _same
    width, height = cfg.MODEL.IMAGE_SIZE
    with torch.no_grad():
        model(torch.empty(1, 3, height, width, device="meta"))
    return count_parameters(model), macs[0]

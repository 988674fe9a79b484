"""TreB1eN InsightFace_Pytorch backbones with upstream state_dict names (spec 3.1-3.3).

`Backbone(num_layers, drop_ratio, mode)` is IR / IR-SE 50/100/152; `MobileFaceNet(512)`. The extra
arguments (`units`, `widths`, `input_size`) exist only for tiny test/demo models; their defaults give
exactly the upstream layers, keys and parameter counts.
"""
import torch
from torch import nn

UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)


def l2_norm(x, axis=1):
    return x / torch.norm(x, 2, axis, True)


class Flatten(nn.Module):
    def forward(self, x):
        return x.reshape(x.size(0), -1)


class SEModule(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIR(nn.Module):
    """BN-conv3x3-PReLU-conv3x3(stride)-BN (+SE); MaxPool(1,stride) shortcut when widths match;
    no activation after the sum."""

    def __init__(self, in_channel, depth, stride, se=False):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_channel), nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


def feature_size(input_size: int, stages: int = 4) -> int:
    for _ in range(stages):
        input_size = (input_size + 1) // 2  # 3x3 conv, stride 2, padding 1
    return input_size


class Backbone(nn.Module):
    def __init__(self, num_layers=50, drop_ratio=0.6, mode="ir", embedding_size=512, input_size=112,
                 units=None, widths=None):
        super().__init__()
        if mode not in ("ir", "ir_se"):
            raise ValueError("mode should be ir or ir_se")
        units = tuple(units or UNITS[num_layers])
        widths = tuple(widths or WIDTHS)
        side = feature_size(input_size)
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        self.output_layer = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.Dropout(drop_ratio), Flatten(),
                                          nn.Linear(widths[-1] * side * side, embedding_size),
                                          nn.BatchNorm1d(embedding_size))
        body, in_c = [], widths[0]
        for n, depth in zip(units, widths):
            for i in range(n):
                body.append(BottleneckIR(in_c, depth, 2 if i == 0 else 1, se=(mode == "ir_se")))
                in_c = depth
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return l2_norm(self.output_layer(self.body(self.input_layer(x))))


class ConvBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)
        self.prelu = nn.PReLU(out_c)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class LinearBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)

    def forward(self, x):
        return self.bn(self.conv(x))


class DepthWise(nn.Module):
    def __init__(self, in_c, out_c, residual=False, stride=2, groups=1):
        super().__init__()
        self.conv = ConvBlock(in_c, groups)
        self.conv_dw = ConvBlock(groups, groups, 3, stride, 1, groups=groups)
        self.project = LinearBlock(groups, out_c)
        self.residual = residual

    def forward(self, x):
        out = self.project(self.conv_dw(self.conv(x)))
        return x + out if self.residual else out


class Residual(nn.Module):
    def __init__(self, c, num_block, groups):
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(c, c, True, 1, groups) for _ in range(num_block)])

    def forward(self, x):
        return self.model(x)


class MobileFaceNet(nn.Module):
    def __init__(self, embedding_size=512, input_size=112):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlock(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, stride=2, groups=128)
        self.conv_3 = Residual(64, 4, 128)
        self.conv_34 = DepthWise(64, 128, stride=2, groups=256)
        self.conv_4 = Residual(128, 6, 256)
        self.conv_45 = DepthWise(128, 128, stride=2, groups=512)
        self.conv_5 = Residual(128, 2, 256)
        self.conv_6_sep = ConvBlock(128, 512)
        side = feature_size(input_size)
        self.conv_6_dw = LinearBlock(512, 512, side, 1, 0, groups=512)  # GDC: 7x7 at 112
        self.conv_6_flatten = Flatten()
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x):
        for m in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4,
                  self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw, self.conv_6_flatten):
            x = m(x)
        return l2_norm(self.bn(self.linear(x)))


def build_backbone(net_mode="ir_se", net_depth=100, drop_ratio=0.6, embedding_size=512, input_size=112,
                   units=None, widths=None):
    if net_mode == "mobilefacenet":
        return MobileFaceNet(embedding_size, input_size)
    return Backbone(net_depth, drop_ratio, net_mode, embedding_size, input_size, units, widths)

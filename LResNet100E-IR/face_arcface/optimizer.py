"""Upstream's optimizer: SGD (momentum 0.9) with weight decay on everything but BatchNorm."""
import torch
from torch import nn


def separate_bn_paras(model):
    """(params without BN, BN params) as upstream's walk over model.modules(): only BatchNorm
    parameters escape weight decay; PReLU, SE convs and the FC bias keep it."""
    bn, other = [], []
    for m in model.modules():
        params = list(m.parameters(recurse=False))
        (bn if isinstance(m, nn.modules.batchnorm._BatchNorm) else other).extend(params)
    return other, bn


def param_groups(backbone, head, net_mode):
    wo_bn, bn = separate_bn_paras(backbone)
    if net_mode == "mobilefacenet":
        linear = backbone.linear.weight
        rest = [p for p in wo_bn if p is not linear]
        return [{"params": rest, "weight_decay": 4e-5},
                {"params": [linear, head.kernel], "weight_decay": 4e-4},
                {"params": bn, "weight_decay": 0.0}]
    return [{"params": wo_bn + [head.kernel], "weight_decay": 5e-4},
            {"params": bn, "weight_decay": 0.0}]


def build_sgd(groups, lr):
    """SGD momentum 0.9, no Nesterov; fused/foreach kernels where the build has them."""
    for kw in ({"fused": True}, {"foreach": True}, {}):
        try:
            return torch.optim.SGD(groups, lr=lr, momentum=0.9, **kw)
        except (RuntimeError, TypeError, ValueError):
            continue
    raise RuntimeError("cannot build SGD")

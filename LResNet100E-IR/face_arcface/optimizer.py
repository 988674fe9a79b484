"""Upstream training recipe pieces: weight-decay groups, LR schedule, epoch-seeded sampler,
on-device flip augmentation."""
import numpy as np
import torch
from torch import nn

MILESTONES = (12, 15, 18)


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


def lr_at_epoch(lr0: float, epoch: int, milestones=MILESTONES) -> float:
    """lr0 / 10 per milestone reached; 0-based epochs, applied at the epoch's start."""
    return lr0 * 0.1 ** sum(1 for m in milestones if m <= epoch)


def build_sgd(groups, lr):
    """SGD momentum 0.9, no Nesterov; fused/foreach kernels where the build has them."""
    for kw in ({"fused": True}, {"foreach": True}, {}):
        try:
            return torch.optim.SGD(groups, lr=lr, momentum=0.9, **kw)
        except (RuntimeError, TypeError, ValueError):
            continue
    raise RuntimeError("cannot build SGD")


class EpochSampler(torch.utils.data.Sampler):
    """Order = permutation seeded by (seed + epoch), padded by wrap-around so every rank gets the
    same count, then strided over ranks (DistributedSampler's scheme). `start` skips samples
    already consumed when resuming mid-epoch."""

    def __init__(self, n, world_size=1, rank=0, seed=0, shuffle=True):
        self.n, self.world, self.rank, self.seed, self.shuffle = n, world_size, rank, seed, shuffle
        self.epoch, self.start = 0, 0
        self.per_rank = -(-n // world_size)

    def set_epoch(self, epoch, start=0):
        self.epoch, self.start = epoch, start

    def indices(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).numpy()
        else:
            order = np.arange(self.n)
        total = self.per_rank * self.world
        order = np.resize(order, total)  # wrap-around padding
        return order[self.rank:total:self.world]

    def __iter__(self):
        return iter(self.indices()[self.start:].tolist())

    def __len__(self):
        return self.per_rank - self.start


def flip_mask(batch, seed, epoch, step, device):
    """RandomHorizontalFlip(0.5) decisions for one batch, a function of (seed, epoch, step, rank via
    seed) so a resumed run flips exactly as an uninterrupted one."""
    g = torch.Generator().manual_seed((seed * 1000003 + epoch) * 1000003 + step)
    return (torch.rand(batch, generator=g) < 0.5).to(device)


def hflip_where(x, mask):
    return torch.where(mask.view(-1, 1, 1, 1), torch.flip(x, [3]), x)

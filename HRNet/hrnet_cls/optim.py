"""Optimizer (lib/utils/utils.py get_optimizer) and the step LR schedule, written out per epoch.

Upstream builds MultiStepLR([30, 60, 90], 0.1, last_epoch=BEGIN_EPOCH-1) and calls .step() at
the start of every epoch. Under its pinned torch 0.4.1 that gives lr(e) = LR * 0.1^#{m <= e}
(0-based epochs 0-29 at LR, 30-59 at LR/10, ...): `upstream` below. Under torch >= 1.1 the
constructor already steps once, so the same code drops one epoch early (29, 59, 89): that is
what the Ascend port trained with (`port`).
"""
import bisect

import torch

SCHEDULES = ("upstream", "port")


def lr_at_epoch(epoch: int, base_lr: float, lr_step, factor: float, schedule: str = "upstream") -> float:
    """LR of 0-based `epoch`. `lr_step` is a list of milestones (MultiStepLR) or one period (StepLR)."""
    e = epoch + (1 if schedule == "port" else 0)
    if isinstance(lr_step, (list, tuple)):
        drops = bisect.bisect_right(sorted(lr_step), e)
    else:
        drops = e // int(lr_step)
    return base_lr * factor ** drops


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def get_optimizer(cfg, model, lr: float, device: torch.device):
    """SGD (momentum, Nesterov, weight decay on every parameter, BN and biases included) or Adam."""
    params = [p for p in model.parameters() if p.requires_grad]
    # fused kernels where the backend has them; otherwise the multi-tensor (foreach) path
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.TRAIN.OPTIMIZER == "sgd":
        if device.type == "npu":
            try:  # the port's fused optimizer (Ascend apex)
                from apex.optimizers import NpuFusedSGD
                return NpuFusedSGD(params, lr=lr, momentum=cfg.TRAIN.MOMENTUM, weight_decay=cfg.TRAIN.WD,
                                   nesterov=cfg.TRAIN.NESTEROV)
            except ImportError:
                pass
        return torch.optim.SGD(params, lr=lr, momentum=cfg.TRAIN.MOMENTUM, weight_decay=cfg.TRAIN.WD,
                               nesterov=cfg.TRAIN.NESTEROV, **fast)
    return torch.optim.Adam(params, lr=lr, **fast)

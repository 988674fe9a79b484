"""JointsMSELoss with target weight: (1/J) * sum_j 0.5 * mean((P_j w_j - G_j w_j)^2)."""
import torch
from torch import nn


class JointsMSELoss(nn.Module):
    def __init__(self, use_target_weight=True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        b, j = output.shape[:2]
        pred = output.float().reshape(b, j, -1)
        gt = target.float().reshape(b, j, -1)
        if self.use_target_weight:
            w = target_weight.float().reshape(b, j, 1)
            pred, gt = pred * w, gt * w
        # mean over batch and pixels per joint, then the mean over joints: all equal sizes,
        # so one mean of the squared error equals the upstream per-joint loop
        return 0.5 * torch.mean((pred - gt) ** 2)

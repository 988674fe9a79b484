"""MultiTaskNet losses: id cross-entropy + batch-hard triplet on the retrieval feature
(+ 0.125 colour and 0.125 type cross-entropy in multitask mode). All in fp32."""
import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropyLabelSmooth(nn.Module):
    """q = (1-eps)*onehot + eps/K; loss = sum_k mean_batch(-q * log_softmax)."""

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, logits, targets):
        logp = F.log_softmax(logits.float(), dim=1)
        q = torch.full_like(logp, self.epsilon / logits.size(1))
        q.scatter_(1, targets.unsqueeze(1), 1 - self.epsilon + self.epsilon / logits.size(1))
        return (-q * logp).mean(0).sum()


def pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances sqrt(clamp(|a|^2 + |b|^2 - 2ab, 1e-12))."""
    sq = x.pow(2).sum(1, keepdim=True)
    d = sq + sq.t() - 2.0 * (x @ x.t())
    return d.clamp(min=1e-12).sqrt()


class TripletLoss(nn.Module):
    """Batch-hard triplet: hardest positive (self included) and hardest negative per anchor."""

    def __init__(self, margin: float = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, features, targets):
        d = pairwise_distance(features.float())
        same = targets.unsqueeze(0) == targets.unsqueeze(1)
        d_ap = d.masked_fill(~same, float("-inf")).amax(1)
        d_an = d.masked_fill(same, float("inf")).amin(1)
        return F.relu(d_ap - d_an + self.margin).mean()


class MultiTaskLoss(nn.Module):
    """L = l_xent*CE(id) + l_htri*Triplet(f) [+ l_vcolor*CE(colour) + l_vtype*CE(type)]."""

    def __init__(self, multitask: bool, margin=0.3, label_smooth=False, htri_only=False,
                 lambda_xent=1.0, lambda_htri=1.0, lambda_vcolor=0.125, lambda_vtype=0.125):
        super().__init__()
        self.multitask, self.htri_only = multitask, htri_only
        self.ce = CrossEntropyLabelSmooth() if label_smooth else nn.CrossEntropyLoss()
        self.triplet = TripletLoss(margin)
        self.lambdas = (lambda_xent, lambda_htri, lambda_vcolor, lambda_vtype)

    def forward(self, outputs, vids, colors, types):
        l_xent, l_htri, l_color, l_type = self.lambdas
        y_id, feat = outputs[0].float(), outputs[-1].float()
        loss = l_htri * self.triplet(feat, vids)
        if not self.htri_only:
            loss = loss + l_xent * self.ce(y_id, vids)
        if self.multitask:
            loss = loss + l_color * self.ce(outputs[1].float(), colors) + l_type * self.ce(outputs[2].float(), types)
        return loss

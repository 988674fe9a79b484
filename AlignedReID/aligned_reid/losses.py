"""Triplet losses on global and aligned local features, and the mutual-learning terms.

All distances are batched tensor ops: the aligned local distance of every pair in a batch is
one matmul, a tanh and an 8-step row recurrence (no Python loop over pairs).
"""
import torch
import torch.nn.functional as F
from torch import nn


def normalize(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """x / (||x||_2 + 1e-12) along `axis` (upstream's normalize_feature)."""
    return x / (x.norm(2, dim=axis, keepdim=True) + 1e-12)


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[m,d] x [n,d] -> [m,n]; sqrt(clamp(|x|^2 + |y|^2 - 2x.y, min=1e-12))."""
    xx = x.pow(2).sum(1, keepdim=True)
    yy = y.pow(2).sum(1).unsqueeze(0)
    return (xx + yy - 2.0 * x @ y.t()).clamp(min=1e-12).sqrt()


def shortest_path(d: torch.Tensor) -> torch.Tensor:
    """Right/down shortest path from d[...,0,0] to d[...,-1,-1], summing the visited cells.

    S[i,j] = d[i,j] + min(S[i-1,j], S[i,j-1]). Unrolled along a row with c = cumsum(d[i]):
    S[i,j] = c[j] + min_{k<=j}(S[i-1,k] - c[k] + d[i,k]), i.e. one cummin per row.
    """
    rows = d.unbind(-2)
    s = rows[0].cumsum(-1)
    for row in rows[1:]:
        c = row.cumsum(-1)
        s = c + torch.cummin(s - c + row, dim=-1).values
    return s[..., -1]


def element_dist(sq: torch.Tensor) -> torch.Tensor:
    """(exp(d)-1)/(exp(d)+1) of the clamped euclidean distance, i.e. tanh(d/2), from squared d."""
    return torch.tanh(sq.clamp(min=1e-12).sqrt() / 2)


def local_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Aligned distance of every pair: x [M,H,C], y [N,H,C] -> [M,N]."""
    m, h, c = x.shape
    n = y.shape[0]
    xf, yf = x.reshape(m * h, c), y.reshape(n * h, c)
    sq = xf.pow(2).sum(1, keepdim=True) + yf.pow(2).sum(1).unsqueeze(0) - 2.0 * xf @ yf.t()
    d = element_dist(sq).view(m, h, n, h).permute(0, 2, 1, 3)
    return shortest_path(d)


def batch_local_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Aligned distance of N pairs (x[i], y[i]): [N,H,C] x [N,H,C] -> [N]."""
    sq = x.pow(2).sum(2).unsqueeze(2) + y.pow(2).sum(2).unsqueeze(1) - 2.0 * x @ y.transpose(1, 2)
    return shortest_path(element_dist(sq))


def hard_example_mining(dist: torch.Tensor, labels: torch.Tensor):
    """Batch-hard mining on an [N,N] distance: the farthest positive (the anchor itself
    included, as upstream) and the closest negative. Returns dist_ap, dist_an, p_inds, n_inds."""
    same = labels.view(-1, 1) == labels.view(1, -1)
    dist_ap, p_inds = dist.masked_fill(~same, float("-inf")).max(1)
    dist_an, n_inds = dist.masked_fill(same, float("inf")).min(1)
    return dist_ap, dist_an, p_inds, n_inds


class TripletLoss(nn.Module):
    """mean(max(0, d_ap - d_an + margin)); with margin None, the soft margin log(1+exp(d_ap-d_an))."""

    def __init__(self, margin: float | None = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, dist_ap, dist_an):
        y = torch.ones_like(dist_an)
        if self.margin is None:
            return F.soft_margin_loss(dist_an - dist_ap, y)
        return F.margin_ranking_loss(dist_an, dist_ap, y, margin=self.margin)


def global_loss(tri: TripletLoss, feat: torch.Tensor, labels: torch.Tensor, normalize_feature: bool = False):
    """Returns loss, p_inds, n_inds, dist_ap, dist_an, dist_mat."""
    if normalize_feature:
        feat = normalize(feat, axis=-1)
    dist_mat = euclidean_dist(feat, feat)
    dist_ap, dist_an, p_inds, n_inds = hard_example_mining(dist_mat, labels)
    return tri(dist_ap, dist_an), p_inds, n_inds, dist_ap, dist_an, dist_mat


def local_loss(tri: TripletLoss, local_feat: torch.Tensor, labels: torch.Tensor, p_inds=None, n_inds=None,
               normalize_feature: bool = False):
    """Local triplet loss. With p_inds/n_inds (the global hard samples, upstream's default) only
    those pairs are measured; without them, mining runs on the full [N,N] local distance.
    Returns loss, dist_ap, dist_an, dist_mat (None when the global indices were reused)."""
    if normalize_feature:
        local_feat = normalize(local_feat, axis=-1)
    if p_inds is None:
        dist_mat = local_dist(local_feat, local_feat)
        dist_ap, dist_an, _, _ = hard_example_mining(dist_mat, labels)
    else:
        dist_mat = None
        dist_ap = batch_local_dist(local_feat, local_feat[p_inds])
        dist_an = batch_local_dist(local_feat, local_feat[n_inds])
    return tri(dist_ap, dist_an), dist_ap, dist_an, dist_mat


def probability_mutual_loss(logits: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
    """sum_j KL(softmax_j || softmax_i) / ((M-1) N), the other models' logits detached."""
    log_p = F.log_softmax(logits, dim=1)
    n = logits.shape[0]
    total = sum(F.kl_div(log_p, F.softmax(o.detach(), dim=1), reduction="sum") for o in others)
    return total / (len(others) * n)


def distance_mutual_loss(dist: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
    """sum_j sum_ab (D_ab - D^j_ab)^2 / ((M-1) N^2), the other models' distances detached."""
    n = dist.shape[0]
    total = sum((dist - o.detach()).pow(2).sum() for o in others)
    return total / (len(others) * n * n)

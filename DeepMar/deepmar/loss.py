"""Class-weighted sigmoid cross entropy of DeepMAR."""
import torch
import torch.nn.functional as F


def attribute_weights(pos_ratio):
    """(w_pos, w_neg) = (exp(1 - p), exp(p)) per attribute."""
    p = torch.as_tensor(pos_ratio, dtype=torch.float32)
    return torch.exp(1.0 - p), torch.exp(p)


class WeightedSigmoidCE(torch.nn.Module):
    """Targets in {1, -1, 0}: 1 positive, -1 negative, 0 ignored (weight 0).

    loss = (1/N) sum_i sum_j w_ij * BCE(s_ij, y_ij): BCE mean over all N*L elements (ignored
    ones included) times L, as upstream. Computed in fp32 whatever the autocast dtype.
    """

    def __init__(self, pos_ratio=None, num_att=35):
        super().__init__()
        if pos_ratio is None:
            w_pos = w_neg = torch.ones(num_att)
        else:
            w_pos, w_neg = attribute_weights(pos_ratio)
        self.register_buffer("w_pos", w_pos)
        self.register_buffer("w_neg", w_neg)

    def forward(self, logits, target):
        logits, target = logits.float(), target.float()
        weight = torch.where(target > 0, self.w_pos, torch.where(target < 0, self.w_neg, torch.zeros_like(self.w_pos)))
        y = (target > 0).float()
        return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="mean") * logits.shape[1]

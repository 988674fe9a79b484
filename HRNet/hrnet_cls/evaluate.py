"""Top-k accuracy: hit counts on the device, and upstream's accuracy() in percent (lib/core/evaluate.py)."""
import torch


@torch.no_grad()
def correct_topk(output: torch.Tensor, target: torch.Tensor, topk=(1, 5)) -> list[torch.Tensor]:
    """Number of samples whose target is among the k highest logits, for each k (on device)."""
    maxk = min(max(topk), output.shape[1])
    pred = output.topk(maxk, dim=1, largest=True, sorted=True).indices  # (B, maxk)
    hit = pred.eq(target.view(-1, 1))
    return [hit[:, :min(k, maxk)].any(dim=1).sum() for k in topk]


def accuracy(output, target, topk=(1, 5)) -> list[float]:
    """Upstream's accuracy(): percent of the batch with the target in the top k."""
    n = target.shape[0]
    return [c.item() * 100.0 / n for c in correct_topk(output, target, topk)]

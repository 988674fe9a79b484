"""Re-id evaluation of MultiTaskNet: squared-Euclidean ranking, VeRi junk rule, CMC and mAP,
colour/type accuracy, and the upstream result block.

Everything is a tensor op over chunks of queries (no Python loop over queries or pairs).
"""
import contextlib
import math
import time

import numpy as np
import torch

from common import distributed as zdist
from common.device import synchronize
from common.errors import UserError


def squared_euclidean(qf: torch.Tensor, gf: torch.Tensor) -> torch.Tensor:
    """|q|^2 + |g|^2 - 2 q.g^T, float32 as upstream."""
    qf, gf = qf.float(), gf.float()
    d = qf.pow(2).sum(1, keepdim=True) + gf.pow(2).sum(1).unsqueeze(0)
    return torch.addmm(d, qf, gf.t(), beta=1.0, alpha=-2.0)


def evaluate_rank(distmat, q_vids, g_vids, q_camids, g_camids, max_rank=50, chunk=256):
    """Returns (cmc (max_rank,) float64 numpy, mAP float, number of valid queries).

    Per query: sort the gallery by distance; drop gallery items with the same vid AND the same
    camera (junk, which also drops the query's own copy); skip the query if no positive is left;
    CMC(r) = a positive within the first r kept items; AP = sum over positives at kept rank k of
    (positives up to k)/k, divided by the number of positives.
    """
    distmat = torch.as_tensor(distmat, dtype=torch.float32)
    q_vids, g_vids = torch.as_tensor(q_vids), torch.as_tensor(g_vids)
    q_camids, g_camids = torch.as_tensor(q_camids), torch.as_tensor(g_camids)
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    ranks = torch.arange(1, max_rank + 1)
    cmc_sum = torch.zeros(max_rank, dtype=torch.float64)
    ap_sum, valid = 0.0, 0
    for s in range(0, num_q, chunk):
        d = distmat[s:s + chunk]
        order = torch.argsort(d, dim=1, stable=True)
        gv, gc = g_vids[order], g_camids[order]
        match = gv == q_vids[s:s + chunk, None]
        keep = ~(match & (gc == q_camids[s:s + chunk, None]))
        pos = match & keep
        num_pos = pos.sum(1)
        rank_in_kept = keep.cumsum(1)  # 1-based rank among kept items, read where keep is True
        hits = pos.cumsum(1)
        precision = hits.double() / rank_in_kept.clamp(min=1).double()
        ap = (precision * pos).sum(1) / num_pos.clamp(min=1)
        first = torch.where(pos, rank_in_kept, torch.full_like(rank_in_kept, num_g + 1)).amin(1)
        ok = num_pos > 0
        cmc_sum += (first[ok, None] <= ranks).sum(0).double()
        ap_sum += float(ap[ok].sum())
        valid += int(ok.sum())
    if valid == 0:
        raise UserError("no query has a positive in the gallery after removing same-vid-same-camera images: "
                        "check label_query.csv / label_test.csv and the camera ids in the file names")
    return (cmc_sum / valid).numpy(), ap_sum / valid, valid


def attribute_accuracy(q_pred, q_true, g_pred, g_true) -> float:
    """1 - (wrong_q + wrong_g) / (n_q + n_g) over query and gallery together."""
    q_pred, q_true, g_pred, g_true = (np.asarray(a) for a in (q_pred, q_true, g_pred, g_true))
    wrong = int((q_pred != q_true).sum()) + int((g_pred != g_true).sum())
    return 1.0 - wrong / (len(q_true) + len(g_true))


def shard_indices(n: int, rank: int, world: int) -> tuple[list, int]:
    """Contiguous shard of range(n) for `rank`, padded by repeating its last index so all ranks
    have the same length (all_gather needs equal shapes). Returns (indices, real count)."""
    per = math.ceil(n / world) if n else 0
    lo, hi = min(rank * per, n), min((rank + 1) * per, n)
    idx = list(range(lo, hi))
    real = len(idx)
    pad_with = idx[-1] if idx else (n - 1)
    return idx + [pad_with] * (per - real), real


@torch.no_grad()
def extract_features(model, loader, device, normalizer, amp=None, keyptaware=False, channels_last=False,
                     dist=None, total=None, real=None):
    """Features and colour/type predictions for a loader; gathered over ranks when `dist` is set.

    Returns (features float32 CPU, colour argmax or None, type argmax or None, seconds per batch list)."""
    model.eval()
    feats, colors, types, times = [], [], [], []
    for batch in loader:
        imgs, _, _, _, _, keypts = batch
        x = normalizer(imgs.to(device, non_blocking=True))
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
        k = keypts.to(device, non_blocking=True) if keyptaware else None
        synchronize(device)
        t0 = time.perf_counter()
        with amp.autocast() if amp is not None else contextlib.nullcontext():
            out = model(x, k) if keyptaware else model(x)
        synchronize(device)
        times.append(time.perf_counter() - t0)
        feats.append(out[-1].float())
        if len(out) == 4:
            colors.append(out[1].argmax(1))
            types.append(out[2].argmax(1))
    f = torch.cat(feats) if feats else torch.zeros(0, 0, device=device)
    c = torch.cat(colors) if colors else None
    t = torch.cat(types) if types else None
    if dist is not None and dist.enabled:
        f, c, t = (None if a is None else _gather_trim(a, dist, total, real) for a in (f, c, t))
    return f.cpu(), (None if c is None else c.cpu()), (None if t is None else t.cpu()), times


def _gather_trim(a, dist, total, real):
    """all_gather padded shards, then drop each rank's padding (shard sizes are known on all ranks)."""
    gathered = zdist.all_gather_tensor(a, dist)
    per = a.shape[0]
    parts = []
    for r in range(dist.world_size):
        _, n_r = shard_indices(total, r, dist.world_size)
        parts.append(gathered[r * per:r * per + n_r])
    return torch.cat(parts)


def print_results(mAP: float, cmc, color_acc=None, type_acc=None, ranks=None) -> None:
    """The upstream result block (mAP, Rank-1..50, then colour/type accuracy in multitask)."""
    ranks = ranks or range(1, len(cmc) + 1)
    print("Computing CMC and mAP")
    print("Results ----------")
    print(f"mAP: {mAP:.2%}")
    print("CMC curve")
    for r in ranks:
        print(f"Rank-{r:<3}: {cmc[r - 1]:.2%}")
    print("------------------")
    if color_acc is not None:
        print("Compute attribute classification accuracy")
        print(f"Color classification accuracy: {color_acc:.2%}")
        print(f"Type classification accuracy: {type_acc:.2%}")
        print("------------------")

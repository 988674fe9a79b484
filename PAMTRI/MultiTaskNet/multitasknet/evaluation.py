"""Re-id evaluation of MultiTaskNet: squared-Euclidean ranking, VeRi junk rule, CMC and mAP,
colour/type accuracy, the upstream result block, and the pass over query and gallery (sharded over ranks).

Everything is a tensor op over chunks of queries (no Python loop over queries or pairs).
"""
import contextlib
import math
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from common import distributed
from common.device import synchronize
from common.errors import UserError

from .dataset import VeRiDataset, collate, loader_options
from .veri import map_attributes


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
    gathered = distributed.all_gather_tensor(a, dist)
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


# -- the evaluation pass of train.py, eval.py and eval_onnx.py ------------------------------
def make_test_loaders(veri, args, device, dist):
    """Query and gallery loaders; under torchrun each rank gets a contiguous shard."""
    loaders = []
    for split in (veri.query, veri.gallery):
        ds = VeRiDataset(split, args.heatmapaware, args.segmentaware, train=False, width=args.width,
                         height=args.height, skip_bad_images=False)
        idx, _ = shard_indices(len(ds), dist.rank, dist.world_size)
        loaders.append(DataLoader(Subset(ds, idx), batch_size=args.test_batch, shuffle=False, drop_last=False,
                                  collate_fn=collate, **loader_options(args.workers, device)))
    return loaders


def run_test(model, veri, loaders, args, device, normalizer, dist, color_map, type_map, amp=None,
             keyptaware=False, channels_last=False):
    """Extract features (sharded over ranks), then rank 0 prints the result block.
    Returns (rank1, mAP, metrics) on rank 0 (metrics: the block's figures as fractions, for metrics.jsonl),
    (None, None, None) elsewhere."""
    q_loader, g_loader = loaders
    outs = []
    for loader, split in ((q_loader, veri.query), (g_loader, veri.gallery)):
        outs.append(extract_features(model, loader, device, normalizer, amp, keyptaware, channels_last,
                                     dist=dist, total=len(split)))
    (qf, qc, qt, qtimes), (gf, gc, gt, gtimes) = outs
    if not dist.is_main:
        return None, None, None
    print(f"Extracted features for query set, obtained {qf.shape[0]}-by-{qf.shape[1]} matrix")
    print(f"Extracted features for gallery set, obtained {gf.shape[0]}-by-{gf.shape[1]} matrix")
    times = qtimes + gtimes
    batch_time = float(np.mean(times)) if times else 0.0
    print(f"==> BatchTime(s)/BatchSize(img): {batch_time:.3f}/{args.test_batch}")
    if batch_time > 0:
        print("FPS = %d " % (args.test_batch * dist.world_size / batch_time))  # all processes
    if gf.shape[0] < 50:
        print(f"Note: number of gallery samples is quite small, got {gf.shape[0]}")
    distmat = squared_euclidean(qf, gf)
    cmc, mAP, _ = evaluate_rank(distmat, veri.query.vids, veri.gallery.vids, veri.query.camids, veri.gallery.camids)
    color_acc = type_acc = None
    if qc is not None:
        color_acc = attribute_accuracy(qc.numpy(), map_attributes(veri.query.colors, color_map),
                                       gc.numpy(), map_attributes(veri.gallery.colors, color_map))
        type_acc = attribute_accuracy(qt.numpy(), map_attributes(veri.query.types, type_map),
                                      gt.numpy(), map_attributes(veri.gallery.types, type_map))
    print_results(mAP, cmc, color_acc, type_acc)
    sys.stdout.flush()
    metrics = {"mAP": float(mAP), "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)])}
    if color_acc is not None:
        metrics.update(color_acc=float(color_acc), type_acc=float(type_acc))
    return float(cmc[0]), float(mAP), metrics

"""Face verification as TreB1eN `verifacation.py` computes it (spec 6), vectorised.

Pairs (2k, 2k+1); squared L2 distance; thresholds np.arange(0, 4, 0.01); contiguous (unshuffled)
k folds sized like sklearn KFold; per fold the FIRST threshold with the best train accuracy
(np.argmax) is applied to the test fold with a strict `dist < threshold`.
"""
import numpy as np
import torch
import torch.nn.functional as F

from common import distributed

THRESHOLDS = np.arange(0, 4, 0.01)


def fold_bounds(n: int, k: int):
    """sklearn KFold(k, shuffle=False): the first n % k folds get one extra item."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= folds ({k}) <= pairs ({n})")
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    ends = np.cumsum(sizes)
    return list(zip(ends - sizes, ends))


def kfold_accuracy(dist, issame, nrof_folds=10, thresholds=THRESHOLDS):
    """Per-fold test accuracy and chosen threshold."""
    dist = np.asarray(dist, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    correct = (dist[None, :] < thresholds[:, None]) == issame[None, :]  # (T, n)
    total = correct.sum(1)
    accuracy, best = np.zeros(nrof_folds), np.zeros(nrof_folds)
    n = len(dist)
    for f, (a, b) in enumerate(fold_bounds(n, nrof_folds)):
        in_test = correct[:, a:b].sum(1)
        train_correct = total - in_test  # same denominator for all thresholds: argmax on counts == on accuracy
        t = int(np.argmax(train_correct))
        best[f] = thresholds[t]
        accuracy[f] = float(in_test[t]) / (b - a)
    return accuracy, best


def pair_distances(embeddings):
    e = np.asarray(embeddings, dtype=np.float64) if not torch.is_tensor(embeddings) else embeddings.double().numpy()
    return np.sum(np.square(e[0::2] - e[1::2]), 1)


def evaluate(embeddings, issame, nrof_folds=10):
    """(mean accuracy, mean best threshold), the two numbers upstream prints."""
    acc, thr = kfold_accuracy(pair_distances(embeddings), issame, nrof_folds)
    return acc.mean(), thr.mean()


def normalize_batch(x_uint8_bhwc, device, channels_last=True):
    """uint8 (B,H,W,3) BGR -> float (B,3,H,W) in [-1,1], i.e. ToTensor + Normalize(0.5, 0.5)."""
    x = x_uint8_bhwc.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    x = x.div_(255.0).sub_(0.5).div_(0.5)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


@torch.no_grad()
def embed_images(model, images, batch_size, device, amp=None, flip=True, dist=None, channels_last=True):
    """Embeddings of a (N,H,W,3) uint8 array; with flip, l2_norm(m(x) + m(flip(x))) as the port's
    eval.py. In a distributed run each rank embeds a strided shard and the shards are gathered."""
    dist = dist or distributed.Dist(device=device)
    was_training = model.training
    model.eval()
    n = len(images)
    per_rank = -(-n // dist.world_size)
    idx = np.arange(dist.rank, per_rank * dist.world_size, dist.world_size) % n
    outs = []
    for s in range(0, len(idx), batch_size):
        x = normalize_batch(torch.from_numpy(images[idx[s:s + batch_size]]), device, channels_last)
        ctx = amp.autocast() if amp is not None else torch.autocast(device.type, enabled=False)
        with ctx:
            emb = model(x).float()
            if flip:
                emb = F.normalize(emb + model(torch.flip(x, [3])).float(), dim=1, eps=0.0)
        outs.append(emb.float())
    local = torch.cat(outs) if outs else torch.zeros(0)
    gathered = distributed.all_gather_tensor(local.to(device), dist).cpu()
    order = np.arange(per_rank * dist.world_size).reshape(dist.world_size, per_rank).T.reshape(-1)
    full = gathered[torch.from_numpy(order)]  # rank r's j-th row is image r + j*world
    if was_training:
        model.train()
    return full[:n]

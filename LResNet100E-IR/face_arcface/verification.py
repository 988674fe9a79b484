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


def block_owner(n: int, batch_size: int, world_size: int):
    """Blocks of `batch_size` consecutive images, block b on rank b % world_size: [(rank, start, end)].
    Every image is embedded in the same batch whatever the number of ranks, so a per-epoch check on
    8 devices and eval.py on 1 (same per-device batch) compute bit-identical embeddings."""
    return [(b % world_size, s, min(n, s + batch_size)) for b, s in enumerate(range(0, n, batch_size))]


@torch.no_grad()
def embed_images(model, images, batch_size, device, amp=None, flip=True, dist=None, channels_last=True,
                 embedding_size=None):
    """Embeddings (float32, N x D) of a (N,H,W,3) uint8 array; with flip, l2_norm(m(x) + m(flip(x)))
    as the port's eval.py. `batch_size` is per device; in a distributed run the blocks of
    `block_owner` are spread over the ranks and gathered (every rank returns the full array)."""
    dist = dist or distributed.Dist(device=device)
    was_training = model.training
    model.eval()
    blocks = block_owner(len(images), batch_size, dist.world_size)
    mine = [(s, e) for r, s, e in blocks if r == dist.rank]
    outs = []
    for s, e in mine:
        x = normalize_batch(torch.from_numpy(images[s:e]), device, channels_last)
        ctx = amp.autocast() if amp is not None else torch.autocast(device.type, enabled=False)
        with ctx:
            emb = model(x).float()
            if flip:
                emb = F.normalize(emb + model(torch.flip(x, [3])).float(), dim=1, eps=0.0)
        outs.append(emb.float())
    if was_training:
        model.train()
    if not dist.enabled:
        return torch.cat(outs).cpu() if outs else torch.zeros(0, embedding_size or 0)
    # equal shapes for all_gather: each rank pads its blocks to the largest share
    share = -(-len(blocks) // dist.world_size) * batch_size
    dim = outs[0].shape[1] if outs else int(embedding_size)
    local = torch.zeros(share, dim, device=device)
    if outs:
        mine_rows = torch.cat(outs)
        local[:len(mine_rows)] = mine_rows
    gathered = distributed.all_gather_tensor(local, dist).cpu()
    full = torch.empty(len(images), dim)
    used = [0] * dist.world_size
    for r, s, e in blocks:
        row = r * share + used[r]
        full[s:e] = gathered[row:row + (e - s)]
        used[r] += e - s
    return full

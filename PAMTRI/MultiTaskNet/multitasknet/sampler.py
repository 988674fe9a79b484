"""Identity-balanced (PK) batches: P vehicle ids x K images each, as upstream's
RandomIdentitySampler + DataLoader(batch_size=P*K, drop_last=True).

Per epoch:
1. per id: fewer than K images -> draw K with replacement; shuffle; cut into chunks of K,
   dropping the remainder;
2. while at least P ids still have chunks: pick P of them at random, take one chunk of each.
Each round is one batch of P*K.

Differences from upstream, on purpose:
- the epoch's order is a function of (seed, epoch) only, so `--resume` replays it exactly, and
  each sample carries its own augmentation seed (deterministic with any number of workers);
- with W ranks, the rounds are dealt out in turn: rank r takes rounds r, W+r, 2W+r, ... so
  every rank sees identity-balanced batches (upstream 8p used a plain DistributedSampler) and
  all ranks run the same number of steps.
"""
from collections import defaultdict, deque

import numpy as np

from common.errors import UserError


def ids_per_batch(batch_size: int, num_instances: int) -> int:
    """P of a P x K batch. A batch must hold at least one id and a whole number of K-image chunks: with
    P = 0 the round loop below would never end (upstream hung with growing memory on a zero batch)."""
    if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
        raise UserError(f"a batch of {batch_size} images per process must be a positive multiple of "
                        f"--num-instances {num_instances} (P vehicle ids x K={num_instances} images)")
    return batch_size // num_instances


def upstream_length(vids, num_instances: int) -> int:
    """Upstream __len__: sum over ids of max(n,K) rounded down to a multiple of K."""
    counts = np.bincount(np.asarray(vids)) if len(vids) else np.zeros(0, int)
    total = 0
    for n in counts[counts > 0]:
        m = max(int(n), num_instances)
        total += m - m % num_instances
    return total


class RandomIdentityBatchSampler:
    def __init__(self, vids, batch_size: int, num_instances: int = 4, seed: int = 1,
                 rank: int = 0, world_size: int = 1):
        self.num_pids = ids_per_batch(batch_size, num_instances)  # >= 1: every round consumes chunks
        self.num_instances = num_instances
        self.batch_size = batch_size
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.index_by_vid = defaultdict(list)
        for i, v in enumerate(np.asarray(vids).tolist()):
            self.index_by_vid[int(v)].append(i)
        self.vids = sorted(self.index_by_vid)
        if len(self.vids) < self.num_pids:
            raise UserError(f"a batch of {batch_size} needs {self.num_pids} vehicle ids x {num_instances} images, "
                            f"but the training set has only {len(self.vids)} ids")
        self.set_epoch(0)

    def rounds(self, epoch: int) -> list:
        """All batches of the epoch, before sharding: lists of (index, augmentation seed)."""
        rng = np.random.Generator(np.random.PCG64([self.seed, epoch]))
        k = self.num_instances
        chunks = {}
        for vid in self.vids:
            idxs = np.asarray(self.index_by_vid[vid])
            if len(idxs) < k:
                idxs = rng.choice(idxs, size=k, replace=True)
            else:
                idxs = idxs.copy()
            rng.shuffle(idxs)
            usable = len(idxs) - len(idxs) % k
            chunks[vid] = deque(idxs[i:i + k].tolist() for i in range(0, usable, k))
        available = [v for v in self.vids if chunks[v]]
        batches = []
        while len(available) >= self.num_pids:
            picked = [available[i] for i in rng.choice(len(available), size=self.num_pids, replace=False)]
            batch = []
            for vid in picked:
                batch.extend(chunks[vid].popleft())
            available = [v for v in available if chunks[v]]
            batches.append(batch)
        seeds = np.random.Generator(np.random.PCG64([self.seed, epoch, 1])).integers(
            0, 2 ** 62, size=(len(batches), self.batch_size))
        return [list(zip(b, s.tolist())) for b, s in zip(batches, seeds)]

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch and skip its first `start_step` steps (resume in the middle of an epoch)."""
        self.epoch, self.start_step = int(epoch), int(start_step)
        rounds = self.rounds(self.epoch)
        self.steps_in_epoch = len(rounds) // self.world_size
        self._mine = [rounds[s * self.world_size + self.rank] for s in range(self.start_step, self.steps_in_epoch)]

    def __iter__(self):
        return iter(self._mine)

    def __len__(self):
        return len(self._mine)

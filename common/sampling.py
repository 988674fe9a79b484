"""Index samplers whose order is a function of (seed, epoch) alone.

`EpochSampler` is the training order: a resumed run (`set_epoch(epoch, start)`) draws exactly the
samples the uninterrupted run would have drawn next, on every rank, whatever the loader workers
or the previous process did. `ShardSampler` is the evaluation split over ranks; its name says
whether it pads.
"""
import math

import torch
from torch.utils.data import Sampler


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """The whole epoch's permutation of range(n), seeded by (seed, epoch) only."""
    if not shuffle:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def shard(order: list[int], rank: int, world_size: int, pad: bool) -> list[int]:
    """Rank r's items r, r+W, ...; with `pad` the list wraps around so every rank gets
    ceil(n / W) items (DistributedSampler's scheme: the batch count is the same on every rank)."""
    if pad and order:
        total = math.ceil(len(order) / world_size) * world_size
        order = (order * math.ceil(total / len(order)))[:total]
    return order[rank::world_size]


class EpochSampler(Sampler):
    """Training order: `epoch_order`, padded and strided over ranks. `set_epoch(epoch, start)`
    skips the first `start` samples of this rank, those a resumed run already trained on."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True):
        if n < 1:
            raise ValueError("EpochSampler needs at least one sample")
        self.n, self.rank, self.world_size, self.seed, self.shuffle = n, rank, world_size, seed, shuffle
        self.per_rank = math.ceil(n / world_size)
        self.epoch = self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def indices(self) -> list[int]:
        """This rank's whole epoch, before `start` is skipped."""
        return shard(epoch_order(self.n, self.seed, self.epoch, self.shuffle), self.rank, self.world_size, pad=True)

    def __iter__(self):
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start


class ShardSampler(Sampler):
    """Evaluation order: rank r takes items r, r+W, ... With pad=False (the default) the shards
    differ by at most one item and every item is seen once, so summed counts are exact; with
    pad=True each rank gets ceil(n / W) items (the last ones repeated) for collectives that need
    equal shapes: the caller drops the repeats."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1, pad: bool = False):
        self.ids = shard(list(range(n)), rank, world_size, pad)

    def __iter__(self):
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

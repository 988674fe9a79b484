"""PK sampling: a batch is P identities x K images; an epoch is one pass over the identities."""
import numpy as np

from common.errors import UserError


class PKBatchSampler:
    """Upstream's training order, made a pure function of (seed, epoch, rank).

    Every epoch the id list is shuffled (same permutation on every rank) and cut into
    `world_size` equal shards, so every rank gets the same number of batches (split='shard':
    an epoch is one pass of the whole job over the ids); with split='replicate' every rank
    walks all ids in its own order (an epoch is one pass per rank, the Ascend 8p step count).
    Each shard is
    walked in chunks of `ids_per_batch` ids, the final partial chunk dropped unless
    `final_batch`. Per id, `ims_per_id` images are drawn without replacement, or with
    replacement when the id has fewer. Each image also gets its flip bit (uniform() > 0.5).
    Yields lists of (image index, flip) pairs.
    """

    def __init__(self, labels, ids_per_batch: int, ims_per_id: int, seed: int = 1, rank: int = 0,
                 world_size: int = 1, flip: bool = True, final_batch: bool = False, shuffle: bool = True,
                 kept=None, split: str = "shard"):
        labels = np.asarray(labels)
        keep = np.ones(len(labels), dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
        self.index_of = {}
        for i in np.flatnonzero(keep):
            self.index_of.setdefault(int(labels[i]), []).append(int(i))
        self.ids = np.array(sorted(self.index_of), dtype=np.int64)
        self.ids_per_batch, self.ims_per_id = int(ids_per_batch), int(ims_per_id)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.flip, self.final_batch, self.shuffle = flip, final_batch, shuffle
        if split not in ("shard", "replicate"):
            raise UserError(f"unknown id split '{split}', expected shard or replicate")
        self.split = split
        self.epoch = 1
        self.start_batch = 0
        if self.ids_per_batch < 1 or self.ims_per_id < 1:
            raise UserError("--ids_per_batch and --ims_per_id must be >= 1")
        if len(self) == 0:
            raise UserError(f"{len(self.ids)} training identities over {self.world_size} rank(s) give no full batch "
                            f"of --ids_per_batch {self.ids_per_batch} ids; lower --ids_per_batch")

    @property
    def ids_per_rank(self) -> int:
        return len(self.ids) if self.split == "replicate" else len(self.ids) // self.world_size

    def __len__(self) -> int:
        full, rest = divmod(self.ids_per_rank, self.ids_per_batch)
        return full + (1 if self.final_batch and rest else 0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """1-based epoch; `start_batch` skips batches already trained (exact resume)."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self):
        order = self.ids.copy()
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        if self.split == "replicate":
            shard = order if self.rank == 0 or not self.shuffle else \
                np.random.default_rng([self.seed, self.epoch, self.rank]).permutation(order)
        else:
            shard = order[self.rank * self.ids_per_rank:(self.rank + 1) * self.ids_per_rank]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
        for b in range(len(self)):
            batch = []
            for pid in shard[b * self.ids_per_batch:(b + 1) * self.ids_per_batch]:
                inds = self.index_of[int(pid)]
                chosen = rng.choice(inds, size=self.ims_per_id, replace=len(inds) < self.ims_per_id)
                flips = rng.uniform(size=self.ims_per_id) > 0.5 if self.flip else np.zeros(self.ims_per_id, bool)
                batch += [(int(i), bool(f)) for i, f in zip(chosen, flips)]
            if b >= self.start_batch:
                yield batch

"""The training order: (index, epoch) batches from common.sampling.EpochSampler; a resume at batch k
draws exactly the uninterrupted run's batches k, k+1, ..."""
from poseestnet.veri import EpochIndexSampler
from torch.utils.data import BatchSampler


def batches(n, batch, epoch, start_batch=0, rank=0, world=1, seed=1):
    order = EpochIndexSampler(n, rank, world, seed=seed)
    order.set_epoch(epoch, start_batch * batch)
    return list(BatchSampler(order, batch, drop_last=False))


def test_batches_pair_each_index_with_its_epoch():
    got = batches(10, 4, epoch=3)
    assert [len(b) for b in got] == [4, 4, 2]
    assert sorted(i for b in got for i, _ in b) == list(range(10))
    assert {e for b in got for _, e in b} == {3}
    assert got != batches(10, 4, epoch=4)


def test_resume_mid_epoch_continues_the_same_batches():
    full = batches(11, 3, epoch=2)
    assert batches(11, 3, epoch=2, start_batch=2) == full[2:]


def test_every_rank_gets_as_many_batches():
    per_rank = [batches(11, 2, epoch=0, rank=r, world=3) for r in range(3)]
    assert [len(b) for b in per_rank] == [2, 2, 2]
    assert {i for b in per_rank for batch in b for i, _ in batch} == set(range(11))

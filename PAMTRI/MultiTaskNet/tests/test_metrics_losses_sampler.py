"""Evaluation, losses and the identity sampler on small cases worked out by hand."""
import io
import math

import numpy as np
import pytest
import torch
from multitasknet.evaluation import attribute_accuracy, evaluate_rank, shard_indices, squared_euclidean
from multitasknet.losses import CrossEntropyLabelSmooth, MultiTaskLoss, TripletLoss
from multitasknet.sampler import RandomIdentityBatchSampler, upstream_length

from common.errors import UserError
from common.progress import Console, Tee


def test_squared_euclidean():
    d = squared_euclidean(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]]))
    assert d.tolist() == [[1.0, 1.0, 4.0]]


def test_cmc_map_junk_rule():
    # gallery: (vid, cam) = (1,1) (2,2) (1,2) (3,1) (1,3)
    g_vids, g_cams = [1, 2, 1, 3, 1], [1, 2, 2, 1, 3]
    q_vids, q_cams = [1, 3, 4], [1, 2, 1]
    dist = torch.tensor([
        [0.0, 1.0, 2.0, 3.0, 4.0],  # g0 same vid+cam = junk; kept: neg, pos, neg, pos -> AP (1/2+2/4)/2 = 0.5
        [5.0, 4.0, 3.0, 0.5, 2.0],  # g3 (other camera) first -> AP 1
        [1.0, 2.0, 3.0, 4.0, 5.0],  # vid 4 is not in the gallery: skipped
    ])
    cmc, mAP, valid = evaluate_rank(dist, q_vids, g_vids, q_cams, g_cams, max_rank=50)
    assert valid == 2
    assert mAP == pytest.approx(0.75)
    assert len(cmc) == 5  # max rank cut to the gallery size
    assert cmc.tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0])


def test_cmc_map_chunking_gives_the_same_result():
    rng = np.random.default_rng(0)
    dist = torch.from_numpy(rng.random((37, 60))).float()
    qv, gv = rng.integers(0, 5, 37), rng.integers(0, 5, 60)
    qc, gc = rng.integers(0, 3, 37), rng.integers(0, 3, 60)
    a = evaluate_rank(dist, qv, gv, qc, gc, chunk=256)
    b = evaluate_rank(dist, qv, gv, qc, gc, chunk=5)
    assert a[1] == pytest.approx(b[1]) and np.allclose(a[0], b[0]) and a[2] == b[2]


def test_no_valid_query_is_an_error():
    with pytest.raises(UserError, match="no query has a positive"):
        evaluate_rank(torch.zeros(1, 2), [1], [1, 2], [1], [1, 1])


def test_attribute_accuracy_over_query_and_gallery():
    # one wrong in the query, one unknown (-1) ground truth in the gallery: 1 - 2/5
    assert attribute_accuracy([0, 1, 2], [0, 1, 1], [3, 3], [3, -1]) == pytest.approx(0.6)


def test_shard_indices_cover_and_pad():
    a, na = shard_indices(5, 0, 2)
    b, nb = shard_indices(5, 1, 2)
    assert (a, na, b, nb) == ([0, 1, 2], 3, [3, 4, 4], 2)


def test_batch_hard_triplet():
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    vids = torch.tensor([0, 0, 1, 1])
    # anchors: 0: ap 1, an 3 -> 0; 1: ap 1, an 2 -> 0; 3.0: ap 2, an 2 -> 0.3; 5.0: ap 2, an 4 -> 0
    assert TripletLoss(0.3)(x, vids).item() == pytest.approx(0.075, abs=1e-6)


def test_multitask_loss_weights():
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    vids = torch.tensor([0, 0, 1, 1])
    outs = (torch.zeros(4, 6), torch.zeros(4, 4), torch.zeros(4, 3), x)
    zeros = torch.zeros(4, dtype=torch.long)
    # zero logits: CE = ln K; L = ln 6 + 0.075 + 0.125 (ln 4 + ln 3)
    total = MultiTaskLoss(multitask=True)(outs, vids, zeros, zeros).item()
    assert total == pytest.approx(math.log(6) + 0.075 + 0.125 * (math.log(4) + math.log(3)), abs=1e-5)
    only_id = MultiTaskLoss(multitask=False)((outs[0], x), vids, zeros, zeros).item()
    assert only_id == pytest.approx(math.log(6) + 0.075, abs=1e-5)
    htri = MultiTaskLoss(multitask=False, htri_only=True)((outs[0], x), vids, zeros, zeros).item()
    assert htri == pytest.approx(0.075, abs=1e-6)


def test_label_smoothing():
    # softmax([0, ln 3]) = [1/4, 3/4]; target 1, eps 0.1, K 2: q = [0.05, 0.95]
    logits = torch.tensor([[0.0, math.log(3.0)]])
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    assert CrossEntropyLabelSmooth(0.1)(logits, torch.tensor([1])).item() == pytest.approx(expected, abs=1e-6)


VIDS = [0] * 5 + [1] * 2 + [2] * 8 + [3] * 4  # indices 0-4, 5-6, 7-14, 15-18


def test_upstream_length_formula():
    # 5 -> 4, 2 -> max(2,4) = 4, 8 -> 8, 4 -> 4
    assert upstream_length(VIDS, 4) == 20


def test_identity_batches():
    s = RandomIdentityBatchSampler(VIDS, batch_size=8, num_instances=4, seed=1)
    for epoch in range(5):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) == 2  # 5 chunks of 4, two ids per batch -> exactly 2 full rounds
        for b in batches:
            idx = [i for i, _ in b]
            ids = [VIDS[i] for i in idx]
            assert len(b) == 8 and len(set(ids)) == 2
            assert all(ids.count(v) == 4 for v in set(ids))
            if 1 in ids:  # only 2 images: drawn with replacement
                assert set(i for i in idx if VIDS[i] == 1) <= {5, 6}
            if 0 in ids:  # 5 images: a chunk of 4 distinct ones
                assert len({i for i in idx if VIDS[i] == 0}) == 4
    s.set_epoch(3)
    again = list(s)
    s.set_epoch(3)
    assert list(s) == again  # the order is a function of (seed, epoch)
    s.set_epoch(4)
    assert list(s) != again


def test_identity_batches_sharded_over_ranks_and_resumed():
    full = RandomIdentityBatchSampler(VIDS, 4, 4, seed=7)  # one id per batch: 5 rounds
    full.set_epoch(2)
    rounds = list(full)
    ranks = []
    for r in range(2):
        s = RandomIdentityBatchSampler(VIDS, 4, 4, seed=7, rank=r, world_size=2)
        s.set_epoch(2)
        ranks.append(list(s))
    assert len(rounds) == 5 and len(ranks[0]) == len(ranks[1]) == 2  # 5 rounds -> 2 steps, same on each rank
    assert ranks[0] == [rounds[0], rounds[2]] and ranks[1] == [rounds[1], rounds[3]]
    s = RandomIdentityBatchSampler(VIDS, 4, 4, seed=7)
    s.set_epoch(2, start_step=3)
    assert list(s) == rounds[3:]


def test_sampler_bad_batch():
    with pytest.raises(UserError, match="multiple of --num-instances"):
        RandomIdentityBatchSampler(VIDS, 6, 4)
    with pytest.raises(UserError, match="only 4 ids"):
        RandomIdentityBatchSampler(VIDS, 32, 4)


def test_sampler_refuses_a_batch_without_ids():
    """A zero batch gave P = 0 ids per round: the round loop never ended and memory grew (upstream hang)."""
    for batch in (0, 2):
        with pytest.raises(UserError, match="positive multiple of --num-instances 4"):
            RandomIdentityBatchSampler(VIDS, batch, 4)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_stays_out_of_log_train_txt(tmp_path):
    """train.py's Console writes through the Tee: on a terminal the bar is drawn there, log_train.txt gets the
    log lines only; off a terminal there is no bar at all."""
    term = _Terminal()
    tee = Tee(term, str(tmp_path / "log_train.txt"))
    console = Console(True, stream=tee)
    console.bar(3, "Ep 1/2")
    for _ in range(3):
        console.update(loss=1.5, images_per_sec=10.0)
    console.log("epoch: 1 step: 3, loss is 1.5000000")
    console.close_bar()
    tee.file.close()
    assert "Ep 1/2" in term.getvalue() and "\r" in term.getvalue() and "loss=1.5000" in term.getvalue()
    assert (tmp_path / "log_train.txt").read_text() == "epoch: 1 step: 3, loss is 1.5000000\n"
    plain = io.StringIO()
    console = Console(True, stream=Tee(plain, str(tmp_path / "b.txt")))
    assert not console.bars_enabled
    console.bar(3, "Ep 1/2")
    console.update(loss=1.5)
    console.log("line")
    assert plain.getvalue() == "line\n"

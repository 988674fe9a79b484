"""common.sampling, common.schedule, common.cli.int_tuple and progress.Tee, by hand."""
import argparse

import pytest
import torch

from common.cli import int_tuple, parse_int_tuple
from common.errors import UserError
from common.progress import Tee
from common.sampling import EpochSampler, ShardSampler, epoch_order
from common.schedule import format_lr, staircase_lr


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert epoch_order(5, 0, 0, shuffle=False) == [0, 1, 2, 3, 4]
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3 * 100_003 + 2)).tolist()
    assert epoch_order(10, 3, 2) == expected
    assert sorted(epoch_order(10, 3, 2)) == list(range(10))
    assert epoch_order(10, 3, 2) != epoch_order(10, 3, 1)


def test_epoch_sampler_pads_by_wrapping_and_strides_over_ranks():
    order = epoch_order(5, 1, 4)
    ranks = [EpochSampler(5, rank=r, world_size=2, seed=1) for r in range(2)]
    for s in ranks:
        s.set_epoch(4)
    assert [list(s) for s in ranks] == [order[0::2], order[1::2] + [order[0]]]
    assert [len(s) for s in ranks] == [3, 3]


def test_epoch_sampler_resume_draws_what_the_uninterrupted_run_draws_next():
    whole = EpochSampler(9, seed=5)
    whole.set_epoch(2)
    resumed = EpochSampler(9, seed=5)
    resumed.set_epoch(2, start=4)
    assert list(resumed) == list(whole)[4:] and len(resumed) == 5


def test_shard_sampler_pads_only_when_asked():
    assert [list(ShardSampler(5, r, 2)) for r in range(2)] == [[0, 2, 4], [1, 3]]
    assert [list(ShardSampler(5, r, 2, pad=True)) for r in range(2)] == [[0, 2, 4], [1, 3, 0]]


def test_staircase_and_lr_text():
    assert staircase_lr(0.1, 3, (5, 10), 0.1) is None
    assert staircase_lr(0.1, 5, (5, 10), 0.1) == pytest.approx(0.01)
    assert staircase_lr(0.1, 10, [5, 10], 0.1) == pytest.approx(0.001)
    assert format_lr(0.01) == "0.01" and format_lr(0.0001) == "0.0001"


def test_int_tuples_in_every_card_spelling():
    for text in ("(256,128)", "256,128", "256 128", "[256, 128]", [256, 128]):
        assert parse_int_tuple(text, "--resize_h_w") == (256, 128)
    assert parse_int_tuple("224", "--resize") == (224,)
    with pytest.raises(UserError, match="--resize: expected integers"):
        parse_int_tuple("(a,b)", "--resize")
    kind = int_tuple(length=2, lo=1)
    assert kind("(8, 4)") == (8, 4)
    for bad in ("(8,)", "(0,4)", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            kind(bad)
    assert int_tuple(sizes=(1, 2))("7") == (7,)
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected integers in \[1, 4096\], got 5000 in '\(5000,1\)'"):
        int_tuple(lo=1, hi=4096)("(5000,1)")


def test_tee_keeps_bar_frames_out_of_the_file(tmp_path):
    class Terminal:
        written = ""

        def write(self, s):
            self.written += s

        def flush(self):
            pass

        def isatty(self):
            return True

    term = Terminal()
    tee = Tee(term, str(tmp_path / "sub" / "log_train.txt"))
    tee.write("Epoch 1 loss 0.5\n")
    tee.write("\r 40%|####  | 2/5")
    tee.flush()
    assert term.written == "Epoch 1 loss 0.5\n\r 40%|####  | 2/5" and tee.isatty()
    assert (tmp_path / "sub" / "log_train.txt").read_text() == "Epoch 1 loss 0.5\n"

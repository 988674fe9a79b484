import math

import numpy as np
import torch
from deepmar.loss import WeightedSigmoidCE
from deepmar.lr_schedule import lrs_at, staircase_lrs
from deepmar.metrics import attribute_metrics, format_block

from common.cli import parse_int_tuple
from common.schedule import format_lr


def bce(s, y):
    return math.log(1 + math.exp(-s)) if y == 1 else math.log(1 + math.exp(s))


def test_weighted_loss_by_hand():
    # attribute 0: p=0.5 -> w+ = e^0.5; attribute 1: p=0.25 -> w- = e^0.25; attribute 2 ignored
    crit = WeightedSigmoidCE([0.5, 0.25, 0.9])
    logits = torch.tensor([[0.0, 2.0, 5.0], [1.0, -1.0, -3.0]])
    target = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])
    per_sample = [
        math.exp(0.5) * bce(0, 1) + math.exp(0.25) * bce(2, 0),
        math.exp(0.5) * bce(1, 0) + math.exp(0.75) * bce(-1, 1),
    ]
    expected = sum(per_sample) / 2  # sum over attributes, mean over the batch
    assert abs(crit(logits, target).item() - expected) < 1e-5


def test_unweighted_loss_is_plain_bce_sum():
    crit = WeightedSigmoidCE(None, num_att=2)
    got = crit(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, -1.0]])).item()
    assert abs(got - 2 * math.log(2)) < 1e-6


def test_loss_is_fp32_under_bf16_logits():
    crit = WeightedSigmoidCE([0.5])
    out = crit(torch.tensor([[0.3]], dtype=torch.bfloat16), torch.tensor([[1.0]]))
    assert out.dtype == torch.float32


def test_metrics_by_hand():
    # 4 samples x 3 attributes; prediction = logit >= 0 (0 counts as positive)
    logits = np.array([[1, -1, 0], [-1, -1, -1], [2, 2, -2], [-1, 1, 1]], dtype=float)
    gt = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 2]])
    # pred: [1,0,1], [0,0,0], [1,1,0], [0,1,1]
    r = attribute_metrics(logits, gt)
    # attr0: pos 1/2, neg 1/2; attr1: pos 1/2, neg 1/2; attr2: no positives -> nan, negatives s0,s1,s2 -> 2/3
    assert np.allclose(r["label_pos_acc"][:2], [0.5, 0.5]) and math.isnan(r["label_pos_acc"][2])
    assert np.allclose(r["label_neg_acc"], [0.5, 0.5, 2 / 3])
    # instance: sample 2 (no positive GT) excluded -> cnt_eff = 3
    # s0: G={0}, P={0,2}: inter 1, union 2, prec 1/2, rec 1
    # s1: G={0,1}, P={}: inter 0, union 2, prec 0 (empty prediction), rec 0
    # s3: G={1}, P={1,2} (the ignored label 2 still enters P): inter 1, union 2, prec 1/2, rec 1
    assert abs(r["instance_acc"] - (0.5 + 0 + 0.5) / 3) < 1e-12
    assert abs(r["instance_precision"] - (0.5 + 0 + 0.5) / 3) < 1e-12
    assert abs(r["instance_recall"] - 2 / 3) < 1e-12
    p, q = 1 / 3, 2 / 3
    assert abs(r["instance_F1"] - 2 * p * q / (p + q)) < 1e-12


def test_printed_block():
    r = {"mA": 0.84234, "instance_acc": 0.79171, "instance_precision": 0.87962, "instance_recall": 0.85591,
         "instance_F1": 0.86762}
    lines = format_block(r).splitlines()
    assert lines == ["-" * 60, "Evaluation on test set:", "Label-based evaluation: ", " mA: 0.8423",
                     "Instance-based evaluation: ", " Acc: 0.7917, Prec: 0.8796, Rec: 0.8559, F1: 0.8676", "-" * 60]


def test_staircase_schedule_of_train_sh():
    base = [1e-3, 1e-3]
    decay = parse_int_tuple("(50,100)", "x")
    assert decay == (50, 100)
    assert staircase_lrs(49, base, decay, 0.1) is None
    assert np.allclose(staircase_lrs(50, base, decay, 0.1), [1e-4, 1e-4])
    assert np.allclose(staircase_lrs(100, base, decay, 0.1), [1e-5, 1e-5])
    assert format_lr(1e-4) == "0.0001" and format_lr(0.01) == "0.01"
    assert parse_int_tuple("(51,)", "x") == (51,) and parse_int_tuple("224", "x") == (224,)


def test_lr_in_force_at_a_resumed_epoch():
    base, decay = [1e-3, 2e-3], (50, 100)
    assert lrs_at(49, base, decay, 0.1) == base
    assert np.allclose(lrs_at(50, base, decay, 0.1), [1e-4, 2e-4])
    assert np.allclose(lrs_at(99, base, decay, 0.1), [1e-4, 2e-4])
    assert np.allclose(lrs_at(150, base, decay, 0.1), [1e-5, 2e-5])


def test_random_hflip_flips_whole_images():
    from deepmar.transforms import random_hflip

    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    torch.manual_seed(0)
    flip = torch.rand(2) < 0.5
    torch.manual_seed(0)
    y = random_hflip(x)
    for i in range(2):
        assert torch.equal(y[i], x[i].flip(-1) if flip[i] else x[i])
    assert torch.equal(random_hflip(x, p=0.0), x) and torch.equal(random_hflip(x, p=1.0), x.flip(-1))

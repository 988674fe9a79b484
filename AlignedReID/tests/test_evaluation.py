"""Hand-computed CMC, AP (trapezoidal and step), re-ranking and LR schedule values."""
import math

import numpy as np
import pytest
from aligned_reid.evaluation import cmc_map, compute_dist, format_scores
from aligned_reid.lr_schedule import exp_lr, lr_adjusted_line
from aligned_reid.re_ranking import re_ranking

from common.schedule import staircase_lr

# one query (id 1, cam 1); gallery in distance order
G_IDS = np.array([1, 2, 1, 0, 1, 3])
G_CAMS = np.array([1, 2, 2, 3, 3, 1])
DIST = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])


def test_cmc_drops_same_id_same_camera_and_keeps_distractors():
    # valid ranking: g1 (neg), g2 (match), g3 (distractor, neg), g4 (match), g5 (neg)
    mAP, cmc = cmc_map(DIST, [1], G_IDS, [1], G_CAMS)
    assert cmc[0] == 0.0 and cmc[1] == 1.0 and cmc[9] == 1.0
    # trapezoid: 1/2 * (0/1 + 1/2)/2 + 1/2 * (1/3 + 2/4)/2 = 1/8 + 5/24
    assert mAP == pytest.approx(1 / 8 + 5 / 24)


def test_step_ap():
    mAP, _ = cmc_map(DIST, [1], G_IDS, [1], G_CAMS, ap="step")
    assert mAP == pytest.approx(0.5 * (1 / 2) + 0.5 * (2 / 4))


def test_queries_without_valid_match_are_skipped_and_first_rank_match_is_ap_one():
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                     [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],    # id 3 cam 2: its only match g5 at rank 1
                     [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])   # id 3 cam 1: g5 is same id same cam -> skipped
    mAP, cmc = cmc_map(dist, [1, 3, 3], G_IDS, [1, 2, 1], G_CAMS)
    assert cmc[0] == pytest.approx(0.5)  # 2 valid queries, one hit at rank 1
    assert mAP == pytest.approx((1 / 8 + 5 / 24 + 1.0) / 2)


def test_tied_scores_form_one_pr_point():
    # match and non-match tied at 0.2: one threshold with precision 1/2, recall 1
    dist = np.array([[0.2, 0.2, 0.5]])
    mAP, _ = cmc_map(dist, [1], np.array([2, 1, 3]), [1], np.array([2, 2, 2]))
    assert mAP == pytest.approx((1.0 + 0.5) / 2)
    mAP, _ = cmc_map(dist, [1], np.array([2, 1, 3]), [1], np.array([2, 2, 2]), ap="step")
    assert mAP == pytest.approx(0.5)


def test_metric_line_format():
    cmc = [0.8705, 0.9, 0.92, 0.93, 0.9422, 0.95, 0.96, 0.97, 0.98, 1.0]
    assert format_scores(0.7138, cmc) == "[mAP: 71.38%], [cmc1: 87.05%], [cmc5: 94.22%], [cmc10: 100.00%]"


def test_compute_dist():
    d = compute_dist(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert d.tolist() == [[5.0, 0.0]]


# 1 query, 2 gallery; stacked distances [[0,1,2.5],[1,0,2],[2.5,2,0]]
Q_G = np.array([[1.0, 2.5]], np.float32)
Q_Q = np.array([[0.0]], np.float32)
G_G = np.array([[0.0, 2.0], [2.0, 0.0]], np.float32)


def _by_hand(k2):
    # squared, columns / column max, transposed: rows [0, .16, 1], [.25, 0, 1], [1, .64, 0]
    # k1=1: R(0) = R(1) = {0, 1}, R(2) = {2}; the expansion (1 neighbour) adds nothing
    v0 = np.array([1.0, math.exp(-0.16), 0.0])
    v0 /= v0.sum()
    v1 = np.array([math.exp(-0.25), 1.0, 0.0])
    v1 /= v1.sum()
    v2 = np.array([0.0, 0.0, 1.0])
    if k2 == 2:  # mean over the first 2 neighbours: ranks [0,1], [1,0], [2,1]
        v0, v1, v2 = (v0 + v1) / 2, (v1 + v0) / 2, (v2 + v1) / 2
    out = []
    for vg, d in ((v1, 0.16), (v2, 1.0)):
        s = np.minimum(v0, vg).sum()
        out.append(0.7 * (1 - s / (2 - s)) + 0.3 * d)
    return np.array([out])


@pytest.mark.parametrize("k2", [1, 2])
def test_re_ranking_tiny_case_by_hand(k2):
    got = re_ranking(Q_G, Q_Q, G_G, k1=1, k2=k2, lambda_value=0.3)
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got, _by_hand(k2), rtol=1e-5)
    if k2 == 1:
        np.testing.assert_allclose(got, [[0.7 * (1 - 0.897908 / 1.102092) + 0.048, 1.0]], rtol=1e-5)


def test_re_ranking_bounded_pieces_give_the_same_result():
    from aligned_reid import re_ranking as rr

    rng = np.random.default_rng(0)
    f = rng.normal(size=(10, 4))[rng.integers(0, 10, 60)] + 0.3 * rng.normal(size=(60, 4))
    q, g = f[:12], f[12:]
    args = compute_dist(q, g), compute_dist(q, q), compute_dist(g, g)
    full = re_ranking(*args, k1=6, k2=3)
    orig = rr._min_sum
    try:  # force many tiny pieces in the min-sum join and in the column passes
        rr._min_sum = lambda a, b: orig(a, b, max_pairs=7, max_cells=50)
        small = re_ranking(*args, k1=6, k2=3, chunk=5)
    finally:
        rr._min_sum = orig
    np.testing.assert_allclose(full, small, rtol=1e-6)


def test_exp_lr_schedule_upstream_values():
    assert exp_lr(2e-4, 150, 300, 151) is None
    assert exp_lr(2e-4, 151, 300, 151) == pytest.approx(2e-4 * 0.001 ** (1 / 150))
    assert exp_lr(2e-4, 151, 300, 151) == pytest.approx(1.91e-4, rel=1e-3)
    assert exp_lr(2e-4, 200, 300, 151) == pytest.approx(2e-5)
    assert exp_lr(2e-4, 250, 300, 151) == pytest.approx(2e-6)
    assert exp_lr(2e-4, 300, 300, 151) == pytest.approx(2e-7)


def test_staircase_lr_and_log_line():
    assert staircase_lr(2e-4, 100, (101, 201), 0.1) is None
    assert staircase_lr(2e-4, 101, (101, 201), 0.1) == pytest.approx(2e-5)
    assert staircase_lr(2e-4, 201, (101, 201), 0.1) == pytest.approx(2e-6)
    assert lr_adjusted_line(2e-5) == "=====> lr adjusted to 0.00002"


def test_epoch_lr_follows_lr_decay_type():
    import argparse

    from aligned_reid.lr_schedule import epoch_lr

    args = argparse.Namespace(lr_decay_type="exp", base_lr=2e-4, total_epochs=300, exp_decay_at_epoch=151,
                              staircase_decay_at_epochs=(101, 201), staircase_decay_multiply_factor=0.1)
    assert epoch_lr(args, 101) is None and epoch_lr(args, 200) == pytest.approx(2e-5)
    args.lr_decay_type = "staircase"
    assert epoch_lr(args, 101) == pytest.approx(2e-5) and epoch_lr(args, 200) is None

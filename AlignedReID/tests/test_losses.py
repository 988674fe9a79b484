"""Hand-computed checks of distances, hard mining, triplet and aligned local distance."""
import math

import pytest
import torch
from aligned_reid import losses


def test_euclidean_dist_clamps_before_sqrt():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    d = losses.euclidean_dist(x, x)
    assert d[0, 1].item() == pytest.approx(5.0)
    assert d[1, 0].item() == pytest.approx(5.0)
    assert d[0, 0].item() == pytest.approx(1e-6, rel=1e-3)  # sqrt(1e-12)


def test_normalize_feature():
    x = torch.tensor([[3.0, 4.0]])
    assert losses.normalize(x)[0].tolist() == pytest.approx([0.6, 0.8])


D = torch.tensor([[0.0, 2.0, 5.0, 3.0],
                  [2.0, 0.0, 1.0, 4.0],
                  [5.0, 1.0, 0.0, 6.0],
                  [3.0, 4.0, 6.0, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_hard_example_mining_by_hand():
    ap, an, p, n = losses.hard_example_mining(D, LABELS)
    assert ap.tolist() == [2.0, 2.0, 6.0, 6.0]
    assert an.tolist() == [3.0, 1.0, 1.0, 3.0]
    assert p.tolist() == [1, 0, 3, 2]
    assert n.tolist() == [3, 2, 1, 0]


def test_hard_positive_includes_the_anchor_itself():
    d = torch.tensor([[0.5, 3.0], [3.0, 0.5]])  # one image per id: the only positive is the anchor
    ap, an, p, _ = losses.hard_example_mining(d, torch.tensor([0, 1]))
    assert ap.tolist() == [0.5, 0.5] and p.tolist() == [0, 1] and an.tolist() == [3.0, 3.0]


def test_triplet_margin_and_soft_margin():
    ap, an, _, _ = losses.hard_example_mining(D, LABELS)
    # max(0, ap - an + 0.3): 0, 1.3, 5.3, 3.3
    assert losses.TripletLoss(0.3)(ap, an).item() == pytest.approx((0 + 1.3 + 5.3 + 3.3) / 4)
    soft = sum(math.log(1 + math.exp(a - b)) for a, b in [(2, 3), (2, 1), (6, 1), (6, 3)]) / 4
    assert losses.TripletLoss(None)(ap, an).item() == pytest.approx(soft, rel=1e-5)


def test_shortest_path_by_hand():
    d = torch.tensor([[1.0, 2.0, 3.0], [4.0, 1.0, 1.0], [1.0, 5.0, 1.0]])
    # S = [[1,3,6],[5,4,5],[6,9,6]]: the path 1-2-1-1-1
    assert losses.shortest_path(d).item() == pytest.approx(6.0)
    # a path must go down/right only: the cheap cells on the anti-diagonal cannot be chained
    d2 = torch.tensor([[0.0, 9.0, 0.0], [9.0, 0.0, 9.0], [0.0, 9.0, 0.0]])
    assert losses.shortest_path(d2).item() == pytest.approx(18.0)
    # batched: leading dims are pairs
    assert losses.shortest_path(torch.stack([d, d2])).tolist() == pytest.approx([6.0, 18.0])


def test_aligned_local_distance_by_hand():
    # H=2 stripes of 1 channel: |x_i - y_j| = [[4, 0], [1, 3]]; element = tanh(d/2) = (e^d-1)/(e^d+1)
    x = torch.tensor([[[0.0], [3.0]]])
    y = torch.tensor([[[4.0], [0.0]]])
    e = [[math.tanh(2.0), math.tanh(0.5e-6)], [math.tanh(0.5), math.tanh(1.5)]]
    assert (math.exp(4) - 1) / (math.exp(4) + 1) == pytest.approx(e[0][0])
    expected = e[0][0] + min(e[1][0], e[0][1]) + e[1][1]  # 3 cells of the 2x2 path
    assert losses.batch_local_dist(x, y).item() == pytest.approx(expected, rel=1e-5)
    assert losses.local_dist(x, y).item() == pytest.approx(expected, rel=1e-5)
    # an 8-stripe path has 2H-1 = 15 cells: identical far-apart constant stripes give 15*tanh(d/2)
    a = torch.zeros(1, 8, 4)
    b = torch.full((1, 8, 4), 0.5)  # |a_i - b_j| = 1
    assert losses.local_dist(a, b).item() == pytest.approx(15 * math.tanh(0.5), rel=1e-5)


def test_local_loss_reuses_global_hard_indices():
    torch.manual_seed(0)
    feat = torch.randn(4, 3, 5)
    p, n = torch.tensor([1, 0, 3, 2]), torch.tensor([3, 2, 1, 0])
    _, ap, an, mat = losses.local_loss(losses.TripletLoss(0.3), feat, LABELS, p, n)
    assert mat is None
    full = losses.local_dist(feat, feat)
    assert ap.tolist() == pytest.approx([full[i, p[i]].item() for i in range(4)], rel=1e-5)
    assert an.tolist() == pytest.approx([full[i, n[i]].item() for i in range(4)], rel=1e-5)


def test_mutual_losses_by_hand():
    d1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    d2 = torch.tensor([[0.0, 3.0], [3.0, 0.0]])
    # (1-3)^2 * 2 cells / (1 other model * N^2 = 4)
    assert losses.distance_mutual_loss(d1, [d2]).item() == pytest.approx(2.0)
    logits = torch.zeros(2, 2)
    assert losses.probability_mutual_loss(logits, [torch.zeros(2, 2)]).item() == pytest.approx(0.0, abs=1e-7)
    other = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax [0.75, 0.25] and [0.5, 0.5]
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert losses.probability_mutual_loss(logits, [other]).item() == pytest.approx(kl / 2, rel=1e-5)

"""Hand-computed checks of the PoseEstNet formulas (small arrays checked on paper)."""
import math

import numpy as np
import pytest
import torch
from poseestnet.evaluate import PCK_GROUPS, format_name_value, heatmap_accuracy, veri_pck
from poseestnet.inference import forward_flip_test, get_final_preds, get_max_preds
from poseestnet.loss import JointsMSELoss
from poseestnet.targets import generate_target
from poseestnet.transforms import (
    FLIP_PAIRS,
    affine_transform,
    box_center_scale,
    flip_back,
    fliplr_joints,
    get_affine_transform,
)


def test_flip_pairs_are_k_and_k_plus_18():
    assert len(FLIP_PAIRS) == 18
    assert FLIP_PAIRS[0] == (0, 18) and FLIP_PAIRS[17] == (17, 35)


def test_fliplr_joints_mirrors_swaps_and_zeroes_invisible():
    joints = np.zeros((36, 2))
    vis = np.zeros((36, 1))
    joints[0], vis[0] = (2, 3), 1  # visible left wheel
    joints[18], vis[18] = (7, 5), 0  # hidden right wheel
    joints[5], vis[5] = (4, 4), 1
    joints[23], vis[23] = (1, 1), 1
    j, v = fliplr_joints(joints, vis, width=10)
    # x -> 10 - 1 - x, then 0 <-> 18 and 5 <-> 23 swapped; the now-hidden joint 0 is zeroed
    assert v[0, 0] == 0 and tuple(j[0]) == (0, 0)
    assert v[18, 0] == 1 and tuple(j[18]) == (7, 3)
    assert tuple(j[5]) == (8, 1) and tuple(j[23]) == (5, 4)


def test_flip_back_swaps_channels_and_mirrors():
    h = np.zeros((1, 36, 2, 4), np.float32)
    h[0, 0, 1, 0] = 1.0  # joint 0, column 0
    out = flip_back(h)
    assert out[0, 18, 1, 3] == 1.0 and out.sum() == 1.0
    t = flip_back(torch.from_numpy(h))
    assert t[0, 18, 1, 3] == 1.0


def test_box_and_affine_transform():
    c, s = box_center_scale(100, 80)  # padded to a 100x100 square, x1.25 -> 125 px = 0.625 * 200
    assert tuple(c) == (50, 40) and np.allclose(s, [0.625, 0.625])
    t = get_affine_transform(c, s, 0, (256, 256))
    # 125 px -> 256 px around the centre: factor 2.048
    assert np.allclose(affine_transform([[50, 40], [50 - 62.5, 40], [60, 40]], t),
                       [[128, 128], [0, 128], [128 + 20.48, 128]], atol=1e-4)
    back = get_affine_transform(c, s, 0, (64, 64), inv=True)
    assert np.allclose(affine_transform([[32, 32], [0, 32]], back), [[50, 40], [-12.5, 40]], atol=1e-4)
    # a 90 degree rotation turns the box: a point right of the centre lands above it
    r = get_affine_transform(c, s, 90, (256, 256))
    assert np.allclose(affine_transform([[60, 40]], r), [[128, 128 - 20.48]], atol=1e-3)


def test_gaussian_target():
    joints = np.array([[40.0, 60.0], [-40.0, 10.0], [100.0, 100.0], [-4.0, 8.0]])
    vis = np.array([1, 1, 0, 1])
    target, weight = generate_target(joints, vis, (256, 256), (64, 64), sigma=2)
    assert target.shape == (4, 64, 64) and weight.shape == (4, 1)
    # joint 0 -> heatmap pixel (int(10+0.5), int(15+0.5)) = (10, 15): peak 1, neighbours exp(-d^2/8)
    assert target[0, 15, 10] == 1.0
    assert math.isclose(target[0, 15, 11], math.exp(-1 / 8), rel_tol=1e-6)
    assert math.isclose(target[0, 17, 12], math.exp(-8 / 8), rel_tol=1e-6)
    assert math.isclose(target[0, 15, 16], math.exp(-36 / 8), rel_tol=1e-6)  # window edge (3 sigma)
    assert target[0, 15, 17] == 0.0 and target[0, 22, 10] == 0.0  # outside the 13x13 window
    assert weight[0, 0] == 1
    # joint 1: centre int(-10+0.5) = -9, window [-15, -2] lies left of the map -> weight 0
    assert weight[1, 0] == 0 and target[1].sum() == 0
    # invisible: weight 0, no Gaussian
    assert weight[2, 0] == 0 and target[2].sum() == 0
    # partly outside: centre int(-1+0.5) = 0 -> peak on column 0, weight kept
    assert weight[3, 0] == 1 and target[3, 2, 0] == 1.0


def test_joints_mse_with_target_weight():
    pred = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]])  # (1, 2 joints, 1, 2)
    gt = torch.tensor([[[[0.0, 0.0]], [[1.0, 1.0]]]])
    w = torch.tensor([[[1.0], [0.0]]])
    # joint 0: 0.5 * mean(1, 0) = 0.25; joint 1 weighted out; mean over 2 joints = 0.125
    assert math.isclose(JointsMSELoss(True)(pred, gt, w).item(), 0.125)
    # unweighted: joint 1 adds 0.5 * mean(1, 1) = 0.5 -> (0.25 + 0.5) / 2
    assert math.isclose(JointsMSELoss(False)(pred, gt, w).item(), 0.375)


def test_max_preds_and_post_process_shift():
    h = np.zeros((1, 2, 32, 32), np.float32)
    h[0, 0, 12, 10] = 1.0
    h[0, 0, 12, 11] = 0.5  # right neighbour higher than left -> +0.25 in x
    h[0, 0, 11, 10] = 0.3  # upper neighbour higher than lower -> -0.25 in y
    h[0, 1] = -1.0  # no positive peak -> (0, 0)
    coords, maxvals = get_max_preds(h)
    assert tuple(coords[0, 0]) == (10, 12) and tuple(coords[0, 1]) == (0, 0) and maxvals[0, 0, 0] == 1.0
    # a box of 64 px (scale 64/200) centred at (32, 32): image = 32 + (x - 16) * 2 = 2x
    preds, _ = get_final_preds(h, np.array([[32.0, 32.0]]), np.array([[0.32, 0.32]]), post_process=True)
    assert np.allclose(preds[0, 0], [2 * 10.25, 2 * 11.75], atol=1e-4)
    preds, _ = get_final_preds(h, np.array([[32.0, 32.0]]), np.array([[0.32, 0.32]]), post_process=False)
    assert np.allclose(preds[0, 0], [20, 24], atol=1e-4)


def test_flip_test_average_and_shift():
    class BrightColumn(torch.nn.Module):
        """Joint 0's map has a 1 in the column of the brightest input column (row 0)."""

        def forward(self, x):
            out = torch.zeros(x.shape[0], 36, 2, x.shape[3])
            col = x[:, 0, 0].argmax(1)
            out[torch.arange(x.shape[0]), 0, 0, col] = 1.0
            return out

    x = torch.zeros(1, 3, 2, 8)
    x[0, :, 0, 2] = 1.0
    out = forward_flip_test(BrightColumn(), x, flip_test=True, shift_heatmap=True)
    # direct pass: joint 0 at column 2. Mirrored pass: joint 0 at column 5, mapped back to
    # joint 18 (pair swap) at column 2, then shifted right by one -> column 3. Average: 0.5 each.
    assert out[0, 0, 0, 2] == 0.5 and out[0, 18, 0, 3] == 0.5 and out.sum() == 1.0


def test_heatmap_accuracy_tiny_case():
    target = np.zeros((1, 3, 64, 64), np.float32)
    output = np.zeros_like(target)
    target[0, 0, 20, 20] = 1  # pred 3 px away: 3/6.4 = 0.47 < 0.5 -> hit
    output[0, 0, 20, 23] = 1
    target[0, 1, 30, 30] = 1  # pred 4 px away: 0.625 -> miss
    output[0, 1, 34, 30] = 1
    target[0, 2, 1, 40] = 1  # target y == 1 is not counted
    output[0, 2, 50, 50] = 1
    acc, avg, cnt = heatmap_accuracy(output, target)
    assert list(acc) == [1.0, 0.0, -1.0] and avg == 0.5 and cnt == 2


def test_veri_pck_table_hand_case():
    n = 4  # normaliser 0.25 * sqrt(4) = 0.5 px, threshold 0.5 -> scaled error <= 0.5
    gts = np.zeros((n, 36, 3))
    gts[..., 2] = 1
    gts[2:, 1, 2] = 0  # joint 1 visible in 2 images only
    preds = gts.copy()
    preds[..., 2] = 1.0  # peaks equal to visibility: no confidence error
    preds[1, 0, 0] = 0.2  # 0.4 -> hit
    preds[2, 0, 0] = 0.3  # 0.6 -> miss
    preds[3, 0, 2] = 0.5  # the confidence term counts: |0.5 - 1| / 0.5 = 1 -> miss
    preds[2:, 1, 0] = 50  # hidden joints: ignored
    nv, mean = veri_pck(preds, gts)
    assert list(nv) == list(PCK_GROUPS) + ["Mean", "Mean@0.1"]
    assert math.isclose(nv["Wheel"], (50 + 100 + 100 + 100) / 4)
    assert nv["Fender"] == 100.0
    # Mean weights joints by visible count: (50*4 + 100*2 + 100*4*34) / (4 + 2 + 4*34)
    assert math.isclose(mean, 14000 / 142)
    # Mean@0.1 is threshold 0.11: joint 0 keeps only its exact image -> 25 %
    assert math.isclose(nv["Mean@0.1"], (25 * 4 + 100 * 2 + 100 * 4 * 34) / 142)


def test_table_lines():
    lines = format_name_value({"Wheel": 85.3344, "Mean": 82.3}, "pose_hrnet")
    assert lines == ["| Arch | Wheel | Mean |", "|---|---|---|", "| pose_hrnet | 85.334 | 82.300 |"]


@pytest.mark.parametrize("epoch,lr", [(0, 1e-3), (168, 1e-3), (169, 1e-4), (198, 1e-4), (199, 1e-5)])
def test_lr_steps_one_epoch_early(epoch, lr):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pose_train", Path(__file__).resolve().parents[1] / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from poseestnet.config import load_config

    cfg = load_config()
    assert math.isclose(mod.lr_at(cfg, epoch), lr, rel_tol=1e-9)

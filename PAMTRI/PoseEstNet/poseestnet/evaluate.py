"""Metrics: the training/validation `Accuracy` (PCK of heatmap argmaxes) and the VeRi
per-joint PCK table that PoseEstNet reports."""
from collections import OrderedDict

import numpy as np

from .inference import get_max_preds

PCK_GROUPS = OrderedDict([
    ("Wheel", [0, 1, 18, 19]),
    ("Fender", [2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 23, 24, 25, 26, 27]),
    ("Back", [10, 11, 28, 29]),
    ("Front", [16, 17, 34, 35]),
    ("WindshieldBack", [12, 13, 30, 31]),
    ("WindshieldFront", [14, 15, 32, 33]),
])


def heatmap_accuracy(output, target, thr=0.5):
    """PCK between the argmaxes of predicted and target heatmaps, distances normalised by
    (H/10, W/10). Only joints whose target argmax is > 1 in both axes count.
    Returns (per-joint acc (J,) with -1 where nothing counted, mean over counted joints, count)."""
    output, target = np.asarray(output), np.asarray(target)
    h, w = output.shape[2], output.shape[3]
    pred, _ = get_max_preds(output)
    gt, _ = get_max_preds(target)
    norm = np.array([h, w], dtype=np.float32) / 10
    valid = (gt[..., 0] > 1) & (gt[..., 1] > 1)  # (B, J)
    dists = np.linalg.norm(pred / norm - gt / norm, axis=2)
    n = valid.sum(0)
    hits = ((dists < thr) & valid).sum(0)
    acc = np.where(n > 0, hits / np.maximum(n, 1), -1.0)
    counted = acc >= 0
    cnt = int(counted.sum())
    avg = float(acc[counted].mean()) if cnt else 0.0
    return acc, avg, cnt


def veri_pck(preds, gts, sc_bias=0.25):
    """The upstream VeRi table. preds (N, 36, 3) = x, y, peak; gts (N, 36, 3) = int x, y, v.

    Kept as upstream computes it:
    - the error is the norm of (dx, dy, peak - v): the confidence column takes part;
    - the normaliser is the constant sc_bias * sqrt(N) (the per-image box collapses to area 1
      because its two corners alias one list, and the norm over N ones is sqrt(N));
    - `Mean@0.1` reads row 11 of the 0..0.5 threshold sweep, i.e. threshold 0.11.
    Returns (OrderedDict name -> value in %, Mean)."""
    preds = np.asarray(preds, dtype=np.float64)
    gts = np.asarray(gts, dtype=np.float64)
    n, j = gts.shape[:2]
    vis = gts[..., 2].T.astype(np.int64)  # (J, N)
    err = np.linalg.norm(preds[..., :3] - gts[..., :3], axis=2).T  # (J, N)
    scale = sc_bias * np.sqrt(n)
    scaled = err / scale * vis
    count = vis.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pck = 100.0 * ((scaled <= 0.5) * vis).sum(1) / count
        thresholds = np.arange(0, 0.5 + 0.01, 0.01)
        pck_all = np.stack([100.0 * ((scaled <= t) * vis).sum(1) / count for t in thresholds])
    ratio = count / count.sum()
    out = OrderedDict((name, float(np.mean(pck[idx]))) for name, idx in PCK_GROUPS.items())
    out["Mean"] = float(np.sum(pck * ratio))
    out["Mean@0.1"] = float(np.sum(pck_all[11] * ratio))
    return out, out["Mean"]


def format_name_value(name_value, arch="pose_hrnet"):
    """The three markdown lines of the upstream logger."""
    names = list(name_value.keys())
    if len(arch) > 15:
        arch = arch[:8] + "..."
    return ["| Arch " + " ".join(f"| {k}" for k in names) + " |",
            "|---" * (len(names) + 1) + "|",
            f"| {arch} " + " ".join(f"| {v:.3f}" for v in name_value.values()) + " |"]

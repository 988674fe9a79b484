"""Heatmap decoding: argmax, the quarter-pixel shift toward the higher neighbour, and the
inverse crop transform to original image pixels; flip-test forward."""
import numpy as np
import torch

from .transforms import FLIP_PAIRS, flip_back, transform_preds


def get_max_preds(heatmaps):
    """(B, J, H, W) -> coords (B, J, 2) as float (x, y) of the argmax, maxvals (B, J, 1).
    Joints whose peak is <= 0 get coords (0, 0)."""
    heatmaps = np.asarray(heatmaps)
    b, j, _, w = heatmaps.shape
    flat = heatmaps.reshape(b, j, -1)
    idx = np.argmax(flat, 2).reshape(b, j, 1)
    maxvals = np.take_along_axis(flat, idx, 2).astype(np.float32)
    preds = np.concatenate([idx % w, idx // w], axis=2).astype(np.float32)
    return preds * (maxvals > 0.0), maxvals


def get_final_preds(heatmaps, center, scale, post_process=True):
    """-> preds (B, J, 2) in original pixels, maxvals (B, J, 1)."""
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    coords, maxvals = get_max_preds(heatmaps)
    b, j, h, w = heatmaps.shape
    if post_process:
        px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
        py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
        inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
        pxc, pyc = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
        bi, ji = np.meshgrid(np.arange(b), np.arange(j), indexing="ij")
        dx = heatmaps[bi, ji, pyc, pxc + 1] - heatmaps[bi, ji, pyc, pxc - 1]
        dy = heatmaps[bi, ji, pyc + 1, pxc] - heatmaps[bi, ji, pyc - 1, pxc]
        shift = np.stack([np.sign(dx), np.sign(dy)], -1) * 0.25
        coords = coords + shift * inside[..., None]
    preds = np.stack([transform_preds(coords[i], center[i], scale[i], [w, h]) for i in range(b)])
    return preds.astype(np.float32), maxvals


def forward_flip_test(model, images, flip_test=True, shift_heatmap=True, pairs=FLIP_PAIRS):
    """Heatmaps of `images`; with flip_test, averaged with those of the mirrored input
    (mapped back, pairs swapped, shifted right by one pixel)."""
    output = model(images)
    if not flip_test:
        return output
    flipped = flip_back(model(images.flip(3)), pairs)
    if shift_heatmap:
        flipped = torch.cat([flipped[..., :1], flipped[..., :-1]], dim=3)
    return (output + flipped) * 0.5

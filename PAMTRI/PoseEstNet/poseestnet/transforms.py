"""Crop geometry of the HRNet pose code: centre/scale boxes (scale in units of 200 px),
the affine warp to the network input, and left/right flips with keypoint pair swaps."""
import cv2
import numpy as np

PIXEL_STD = 200.0
# 0..17 are one side of the vehicle, k+18 the same point on the other side
FLIP_PAIRS = [(k, k + 18) for k in range(18)]


def box_center_scale(width, height, image_size=(256, 256)):
    """Whole-image box: centre (w/2, h/2), padded to the input aspect, scale = side/200 * 1.25."""
    aspect = image_size[0] * 1.0 / image_size[1]
    center = np.array([width * 0.5, height * 0.5], dtype=np.float32)
    w, h = float(width), float(height)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * 1.25
    return center, scale


def _rotate(point, rot_rad):
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs], dtype=np.float32)


def _third_point(a, b):
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(center, scale, rot, output_size, shift=(0.0, 0.0), inv=False):
    """2x3 matrix mapping the (rotated) box onto output_size (w, h); inv maps back."""
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 0:
        scale = np.array([scale, scale], dtype=np.float32)
    scale_px = scale * PIXEL_STD
    shift = np.asarray(shift, dtype=np.float32)
    src_w = scale_px[0]
    dst_w, dst_h = output_size[0], output_size[1]
    src_dir = _rotate([0, src_w * -0.5], np.pi * rot / 180)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = np.asarray(center, np.float32) + scale_px * shift
    src[1] = src[0] + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_transform(points, t):
    """Apply a 2x3 matrix to (..., 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(t, dtype=np.float64)[:, :2].T + np.asarray(t, dtype=np.float64)[:, 2]


def fliplr_joints(joints, joints_vis, width, pairs=FLIP_PAIRS):
    """Mirror keypoints of an image `width` px wide: x -> width-1-x, swap the pairs, and zero
    the coordinates of invisible joints (as upstream)."""
    joints = joints.copy()
    joints_vis = joints_vis.copy()
    joints[:, 0] = width - joints[:, 0] - 1
    for a, b in pairs:
        joints[[a, b]] = joints[[b, a]]
        joints_vis[[a, b]] = joints_vis[[b, a]]
    return joints * joints_vis, joints_vis


def flip_back(heatmaps, pairs=FLIP_PAIRS):
    """Heatmaps predicted on a mirrored input -> the original frame: mirror x, swap pairs.
    Works on numpy arrays and torch tensors of shape (B, J, H, W)."""
    idx = list(range(heatmaps.shape[1]))
    for a, b in pairs:
        idx[a], idx[b] = b, a
    if isinstance(heatmaps, np.ndarray):
        return heatmaps[:, idx, :, ::-1].copy()
    return heatmaps[:, idx].flip(3)


def transform_preds(coords, center, scale, output_size):
    """Heatmap coordinates -> original image pixels."""
    t = get_affine_transform(center, scale, 0, output_size, inv=True)
    return affine_transform(coords, t)

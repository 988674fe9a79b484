"""Gaussian heatmap targets (peak 1, sigma from the config, 6-sigma window)."""
import numpy as np


def generate_target(joints, joints_vis, image_size, heatmap_size, sigma):
    """joints (J, 2+) in input pixels, joints_vis (J,) or (J, k) -> target (J, H, W) float32,
    target_weight (J, 1). The joint lands on heatmap pixel int(x/stride + 0.5); a joint whose
    window lies entirely outside the map gets weight 0; invisible joints get no Gaussian."""
    num_joints = len(joints)
    vis = np.asarray(joints_vis, dtype=np.float32).reshape(num_joints, -1)[:, 0]
    target_weight = vis.reshape(num_joints, 1).copy()
    hm_w, hm_h = int(heatmap_size[0]), int(heatmap_size[1])
    target = np.zeros((num_joints, hm_h, hm_w), dtype=np.float32)
    tmp_size = sigma * 3
    stride = np.asarray(image_size, dtype=np.float64) / np.asarray(heatmap_size, dtype=np.float64)
    size = int(2 * tmp_size + 1)
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    x0 = y0 = size // 2
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    for j in range(num_joints):
        mu_x = int(joints[j][0] / stride[0] + 0.5)
        mu_y = int(joints[j][1] / stride[1] + 0.5)
        ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
        br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
        if ul[0] >= hm_w or ul[1] >= hm_h or br[0] < 0 or br[1] < 0:
            target_weight[j] = 0
            continue
        gx = max(0, -ul[0]), min(br[0], hm_w) - ul[0]
        gy = max(0, -ul[1]), min(br[1], hm_h) - ul[1]
        ix = max(0, ul[0]), min(br[0], hm_w)
        iy = max(0, ul[1]), min(br[1], hm_h)
        if target_weight[j] > 0.5:
            target[j, iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
    return target, target_weight

"""A tiny VeRi in the exact on-disk format MultiTaskNet reads (PAMTRI spec 2.2, 2.3, 7.6):

    <root>/veri/image_{train,query,test}/VVVV_cCCC_FFFFFFFF_0.jpg
    <root>/veri/heatmap_<split>/<stem>/00.jpg..35.jpg   64x64 grayscale JPEG (crop frame at 1/4 scale)
    <root>/veri/segment_<split>/<stem>/00.jpg..12.jpg   64x64 grayscale JPEG (image frame, squashed)
    <root>/veri/label_<split>.csv                       112 columns, no header, sorted by name

Images are learnable: the body colour is the colour label, the body height the type, and a
2x3 patch pattern the vehicle identity; plus noise and random image sizes. Query ids share
colours and types in pairs, so colour alone cannot solve retrieval.
"""
import os

import cv2
import numpy as np

PALETTE = np.array([[0, 220, 255], [0, 140, 255], [0, 200, 0], [128, 128, 128], [0, 0, 230],
                    [230, 60, 0], [250, 250, 250], [40, 180, 210], [30, 60, 110], [15, 15, 15]], np.uint8)  # BGR
PATCH = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]], np.uint8)
SEGMENT_QUADS = ((5, 15, 16, 17), (5, 6, 12, 15), (6, 10, 11, 12), (23, 33, 34, 35), (23, 24, 30, 33),
                 (24, 28, 29, 30), (10, 11, 29, 28), (11, 12, 30, 29), (12, 13, 31, 30), (13, 14, 32, 31),
                 (14, 15, 33, 32), (15, 16, 34, 33), (16, 17, 35, 34))


def _signature(vid):
    rs = np.random.RandomState(1000 + vid)
    return rs.randint(0, len(PATCH), size=6)


def _draw(rng, vid, color, vtype, w, h):
    # a random scene (colour, texture) around the vehicle: untrained features mostly see this
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.randint(0, 256, size=3)
    img = np.clip(img + rng.randint(-40, 41, size=(h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w],
                  0, 255).astype(np.uint8)
    body_h = int(h * (0.35 + 0.15 * (vtype % 3)))
    top = (h - body_h) // 2 + rng.randint(-4, 5)
    left, right = int(w * rng.uniform(0.05, 0.2)), int(w * rng.uniform(0.8, 0.95))
    img[top:top + body_h, left:right] = PALETTE[(color - 1) % 10]
    sig = _signature(vid)
    ph, pw = max(body_h // 4, 3), max((right - left) // 6, 3)
    for k, s in enumerate(sig):
        r, c = divmod(k, 3)
        y0, x0 = top + body_h // 4 + r * ph, left + (right - left) // 4 + c * pw
        img[y0:y0 + ph, x0:x0 + pw] = PATCH[s]
    noise = rng.normal(0, 8, size=img.shape)
    img = np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    # 36 keypoints around the body box; confidences spread over [0.2, 1.1] (some segments get gated)
    xs = np.linspace(left, right, 18)
    kp = np.zeros((36, 3), np.float64)
    kp[:18, 0], kp[:18, 1] = xs, top + rng.uniform(-1, 1, 18)
    kp[18:, 0], kp[18:, 1] = xs, top + body_h + rng.uniform(-1, 1, 18)
    kp[:, 2] = rng.uniform(0.2, 1.1, 36)
    return img, kp


def _heatmaps(kp, w, h):
    side = 1.25 * max(w, h)
    out = []
    yy, xx = np.mgrid[0:64, 0:64]
    for x, y, c in kp:
        hx, hy = (x - w / 2 + side / 2) / side * 64, (y - h / 2 + side / 2) / side * 64
        g = np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * 2.0 ** 2)) * min(c, 1.0)
        out.append(np.clip(g * 255, 0, 255).astype(np.uint8))
    return out


def _segments(kp, w, h):
    out = []
    for quad in SEGMENT_QUADS:
        canvas = np.zeros((h, w), np.uint8)
        pts = np.round(kp[list(quad), :2]).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255)
        out.append(cv2.resize(canvas, (64, 64), interpolation=cv2.INTER_LINEAR))
    return out


def make_veri(root, train_ids=12, imgs_per_id=8, test_ids=6, gallery_per_id=4, seed=0,
              heatmaps=True, segments=True, size=(64, 96)):
    """Write the dataset under root/veri and return root."""
    rng = np.random.RandomState(seed)
    d = os.path.join(root, "veri")
    rows = {"train": [], "query": [], "test": []}

    def attrs(vid, test):
        # 4 colours x 3 types; pairs of test ids share both, so colour alone cannot solve retrieval
        v = vid // 2 if test else vid
        return 1 + v % 4, 1 + v % 3

    def write(split, vid, cam, frame, test):
        name = f"{vid:04d}_c{cam:03d}_{frame:08d}_0.jpg"
        color, vtype = attrs(vid, test)
        w, h = rng.randint(size[0], size[1]), rng.randint(size[0] - 8, size[1] - 8)
        img, kp = _draw(rng, vid, color, vtype, w, h)
        splits = ("query", "test") if split == "query" else (split,)
        for s in splits:
            os.makedirs(os.path.join(d, f"image_{s}"), exist_ok=True)
            cv2.imwrite(os.path.join(d, f"image_{s}", name), img)
            stem = name[:-4]
            if heatmaps:
                folder = os.path.join(d, f"heatmap_{s}", stem)
                os.makedirs(folder, exist_ok=True)
                for j, hm in enumerate(_heatmaps(kp, w, h)):
                    cv2.imwrite(os.path.join(folder, f"{j:02d}.jpg"), hm)
            if segments:
                folder = os.path.join(d, f"segment_{s}", stem)
                os.makedirs(folder, exist_ok=True)
                for j, sm in enumerate(_segments(kp, w, h)):
                    cv2.imwrite(os.path.join(folder, f"{j:02d}.jpg"), sm)
            rows[s].append([name, vid, color, vtype] + [f"{v:.3f}" for v in kp.reshape(-1)])

    for vid in range(1, train_ids + 1):
        for k in range(imgs_per_id):
            write("train", vid, 1 + k % 4, 100 + k, False)
    for vid in range(train_ids + 1, train_ids + test_ids + 1):
        write("query", vid, 1, 500, True)
        write("test", vid, 1, 600, True)  # same vid and camera as the query: junk
        for k in range(gallery_per_id):
            write("test", vid, 2 + k, 700 + k, True)
    for s, r in rows.items():
        for sub in ("image", "heatmap", "segment"):
            os.makedirs(os.path.join(d, f"{sub}_{s}"), exist_ok=True)
        with open(os.path.join(d, f"label_{s}.csv"), "w") as f:
            for row in sorted(r, key=lambda x: x[0]):
                f.write(",".join(str(v) for v in row) + "\n")
    return root

"""Write a small, learnable Market-1501 in the RAW layout, prepare it, print the --data_path.

    python tools/make_demo_data.py OUT [--seed 0] [--num_train_ids 32] [--num_test_ids 24]

OUT/Market-1501-v15.09.15/{bounding_box_train,bounding_box_test,query,gt_bbox} hold 128x64
JPEGs named as in the real set ('0002_c1s1_000451_03.jpg'), with '-1' junk and '0000'
distractors in bounding_box_test and extra gt_bbox boxes. Each identity is drawn into the
pixels: shirt and trouser colours and a shirt pattern, under camera-dependent lighting,
position jitter and noise; train and test identities are disjoint, as in Market-1501.
OUT/market1501 is then prepared by the same code as tools/transform_market1501.py; its path
is the last line printed. Deterministic from --seed; takes about a second.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aligned_reid.market1501 import prepare

from common.cli import ArgumentParser, int_range, nonneg_int
from common.errors import UserError, main_guard

H, W = 128, 64
COLOURS = np.array([[220, 30, 30], [30, 160, 40], [30, 60, 220], [230, 220, 40], [240, 240, 240],
                    [25, 25, 25], [150, 60, 200], [250, 140, 20], [40, 200, 220], [140, 90, 40]], np.float32)
CAMERA_CAST = np.array([[1.0, 1.0, 1.0], [1.1, 1.0, 0.9], [0.85, 0.9, 1.0], [1.0, 1.1, 1.0],
                        [0.8, 0.8, 0.8], [1.15, 1.05, 1.05]], np.float32)


def appearance(pid_index: int):
    """(shirt colour, trouser colour, pattern) of the pid_index-th identity, all distinct."""
    code = (pid_index * 37) % 300  # a fixed permutation of the 10 x 10 x 3 combinations
    return COLOURS[code % 10], COLOURS[(code // 10) % 10], code // 100


def draw_person(rng, look, cam: int) -> np.ndarray:
    shirt, trousers, pattern = look
    im = np.empty((H, W, 3), np.float32)
    im[:] = rng.uniform(60, 160, size=3)  # background
    x0, x1 = int(12 + rng.integers(-4, 5)), int(52 + rng.integers(-4, 5))
    top, waist, feet = int(22 + rng.integers(-4, 5)), int(66 + rng.integers(-6, 7)), int(120 + rng.integers(-5, 4))
    cx = (x0 + x1) // 2
    im[top - 16:top, cx - 7:cx + 7] = (225, 180, 150)  # head
    im[top:waist, x0:x1] = shirt
    if pattern == 1:
        im[top:waist:8, x0:x1] = 255 - shirt  # horizontal stripes
    elif pattern == 2:
        im[top:waist, cx - 4:cx + 4] = 255 - shirt  # vertical band
    im[waist:feet, x0 + 3:cx - 1] = trousers
    im[waist:feet, cx + 1:x1 - 3] = trousers
    im *= CAMERA_CAST[cam - 1] * rng.uniform(0.85, 1.15)
    im += rng.normal(0, 12, size=im.shape)
    return np.clip(im, 0, 255).astype(np.uint8)


def draw_clutter(rng) -> np.ndarray:
    im = np.empty((H, W, 3), np.float32)
    im[:] = rng.uniform(60, 160, size=3)
    for _ in range(3):
        y, x = rng.integers(0, H - 20), rng.integers(0, W - 10)
        im[y:y + rng.integers(10, 40), x:x + rng.integers(5, 30)] = COLOURS[rng.integers(10)]
    im += rng.normal(0, 12, size=im.shape)
    return np.clip(im, 0, 255).astype(np.uint8)


class Writer:
    def __init__(self, root: str):
        self.root, self.frame = root, 0

    def save(self, folder: str, pid: int, cam: int, im: np.ndarray) -> None:
        self.frame += 1
        prefix = "-1" if pid < 0 else f"{pid:04d}"
        name = f"{prefix}_c{cam}s1_{self.frame:06d}_{self.frame % 7:02d}.jpg"
        Image.fromarray(im).save(os.path.join(self.root, folder, name), quality=95)


def make_raw(raw: str, seed: int, num_train_ids: int, num_test_ids: int, ims_per_train_id: int) -> None:
    rng = np.random.default_rng(seed)
    if num_train_ids + num_test_ids > 300:
        raise UserError("at most 300 demo identities (num_train_ids + num_test_ids)")
    for d in ("bounding_box_train", "bounding_box_test", "query", "gt_bbox"):
        os.makedirs(os.path.join(raw, d), exist_ok=True)
    pids = np.sort(rng.choice(np.arange(1, 1502), num_train_ids + num_test_ids, replace=False))
    looks = rng.permutation(num_train_ids + num_test_ids)
    order = rng.permutation(len(pids))
    train, test = order[:num_train_ids], order[num_train_ids:]
    w = Writer(raw)
    for k in train:
        for _ in range(ims_per_train_id):
            cam = int(rng.integers(1, 7))
            w.save("bounding_box_train", int(pids[k]), cam, draw_person(rng, appearance(looks[k]), cam))
    for k in test:
        cams = rng.choice(np.arange(1, 7), size=int(rng.integers(2, 4)), replace=False)
        for i, cam in enumerate(cams):
            cam = int(cam)
            for _ in range(2):
                w.save("bounding_box_test", int(pids[k]), cam, draw_person(rng, appearance(looks[k]), cam))
            w.save("gt_bbox", int(pids[k]), cam, draw_person(rng, appearance(looks[k]), cam))
            if i < 2:  # at most one query per camera, in two of the id's cameras
                w.save("query", int(pids[k]), cam, draw_person(rng, appearance(looks[k]), cam))
        # a gt_bbox box of a camera with no query: filtered out by the prepare step
        extra = int(rng.choice([c for c in range(1, 7) if c not in cams[:2]]))
        w.save("gt_bbox", int(pids[k]), extra, draw_person(rng, appearance(looks[k]), extra))
    for _ in range(max(4, num_test_ids // 2)):
        cam = int(rng.integers(1, 7))
        w.save("bounding_box_test", 0, cam, draw_clutter(rng))   # distractors, kept as id 0
        w.save("bounding_box_test", -1, cam, draw_clutter(rng))  # junk, dropped


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--num_train_ids", type=int_range(2, 1500), default=32)
    p.add_argument("--num_test_ids", type=int_range(2, 1500), default=24)
    p.add_argument("--ims_per_train_id", type=int_range(1, 9999), default=8)
    a = p.parse_args(argv)
    out = os.path.abspath(a.out)
    raw = os.path.join(out, "Market-1501-v15.09.15")
    if os.path.isdir(raw) and os.listdir(raw):
        raise UserError(f"{raw} already exists; choose an empty OUT folder")
    make_raw(raw, a.seed, a.num_train_ids, a.num_test_ids, a.ims_per_train_id)
    data_path = os.path.join(out, "market1501")
    parts = prepare(raw, data_path)
    marks = parts["test_marks"]
    print(f"demo Market-1501: raw {raw}; trainval {len(parts['trainval_im_names'])} images / "
          f"{len(parts['trainval_ids2labels'])} ids; query {marks.count(0)}, multi-query {marks.count(2)}, "
          f"gallery {marks.count(1)}")
    print(data_path)


if __name__ == "__main__":
    main()

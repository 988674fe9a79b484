"""Write a small, learnable PETA in the raw upstream format, prepare it, print its path.

    python tools/make_demo_data.py OUT [--num_images 1500] [--seed 0]

OUT/PETA.mat has the real struct layout (data [N x 109]: 4 metadata columns + 105 binary
labels; attribute [105 x 1 cell]; selected_attribute [1 x 35]; partion_attribute [5 x 1
cell of train/val/test 1-based index columns]) and OUT/images/%05d.png are 78x156
pedestrian-sized crops. Each of the 35 trained attributes has its own solid colour,
drawn as a 26x26 patch at a random free cell when the attribute is positive, with pixel
noise, so a CNN can learn every attribute. The last line printed is the --data_path to use.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

from deepmar import peta

from common.cli import ArgumentParser, int_range

W, H, CELL = 78, 156, 26
BACKGROUND = 90.0


def attribute_colours(n=35):
    """n solid colours on a coarse RGB grid, the ones furthest from the grey background first:
    a first-layer colour detector tells them apart, whatever the resize."""
    levels_rg, levels_b = (0, 85, 170, 255), (0, 128, 255)
    grid = [(r, g, b) for r in levels_rg for g in levels_rg for b in levels_b]
    grid.sort(key=lambda c: -sum((v - BACKGROUND) ** 2 for v in c))
    return grid[:n]


COLOURS = attribute_colours(peta.NUM_SELECTED)


def draw(labels, rng):
    img = rng.normal(BACKGROUND, 12, size=(H, W, 3)).astype(np.float32)
    cells = [(r, c) for r in range(H // CELL) for c in range(W // CELL)]
    positives = np.flatnonzero(labels[: peta.NUM_SELECTED] == 1)
    for j, cell in zip(positives, rng.permutation(len(cells))):
        r, c = cells[cell]
        img[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = COLOURS[j]
    img += rng.normal(0, 15, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_mat(path, data, names, parts):
    attribute = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        attribute[i, 0] = np.array([n])
    partitions = np.empty((len(parts), 1), dtype=object)
    for p, part in enumerate(parts):
        partitions[p, 0] = {s: np.asarray(part[s], dtype=np.float64).reshape(-1, 1) for s in peta.SPLITS}
    struct = {"data": data.astype(np.float64), "attribute": attribute,
              "selected_attribute": np.arange(1, 36, dtype=np.float64).reshape(1, -1),
              "partion_attribute": partitions}
    scipy.io.savemat(path, {"peta": struct})


def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--num_images", type=int_range(10), default=1500)
    p.add_argument("--seed", type=int_range(0, 2 ** 32 - 1), default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n = args.num_images
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    # positive rates between 5% and 30% (PETA's range for most attributes): ~6 of the 18 cells used
    rates = rng.uniform(0.05, 0.30, size=peta.NUM_LABELS)
    labels = (rng.random((n, peta.NUM_LABELS)) < rates).astype(np.int64)
    meta = np.stack([np.arange(1, n + 1), np.arange(1, n + 1), np.ones(n), np.arange(1, n + 1)], axis=1)
    data = np.concatenate([meta, labels], axis=1)
    names = [f"attribute{j:03d}" for j in range(peta.NUM_LABELS)]
    for i in range(n):
        Image.fromarray(draw(labels[i], rng)).save(out / "images" / ("%05d.png" % (i + 1)))
    # PETA's split ratios: train 50%, val 10%, test 40% of the images, five random partitions
    n_train, n_val = n // 2, n // 10
    parts = []
    for _ in range(peta.NUM_PARTITIONS):
        perm = rng.permutation(n) + 1
        parts.append({"train": perm[:n_train], "val": perm[n_train:n_train + n_val],
                      "test": perm[n_train + n_val:]})
    write_mat(out / "PETA.mat", data, names, parts)
    peta.transform(os.fspath(out))
    print(f"wrote {n} images, PETA.mat and the prepared pickles in {out}")
    print(os.path.abspath(out))


if __name__ == "__main__":
    main()

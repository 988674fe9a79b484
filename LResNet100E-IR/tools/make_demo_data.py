"""Write a small, learnable faces_emore in the RAW download format, then prepare it.

OUT/faces_emore/{train.rec, train.idx, property, lfw.bin, agedb_30.bin, cfp_fp.bin} exactly as
insightface ships them (record 0 = [first identity key, end key], images keys 1..N with float
labels, identity records (start, end); .bin = pickle of (JPEG bytes list, issame list)), then
tools/prepare_data.py writes imgs/<label>/<key>.jpg. Deterministic from --seed.

Each identity is a mirror-symmetric grid of coloured cells in the middle of the face; every image adds a random
background colour, a random distractor square, a shift, brightness change and noise. Raw pixel
distance is therefore a poor verifier, and a model must learn to look at the grid.
The pairs use new images of the training identities (so the demo checks learning, not open-set
generalisation). Prints the --data_path as its last line.

    python tools/make_demo_data.py OUT [--seed 0] [--ids 40] [--per_id 24] [--size 112] [--pairs 200]
"""
import argparse
import os
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from face_arcface.recordio import IndexedRecordWriter, pack

from common.cli import ArgumentParser, int_range, nonneg_int, positive_int
from common.errors import main_guard

GRID = 3


def identity_codes(rng, n):
    """Mirror-symmetric colour grids: like faces, an identity survives the horizontal flip."""
    codes = rng.integers(0, 256, size=(n, GRID, GRID, 3)).astype(np.float32)
    codes[:, :, GRID - 1 - np.arange(GRID // 2)] = codes[:, :, np.arange(GRID // 2)]
    return codes


def draw_face(rng, code, size):
    """One BGR uint8 image of the identity `code`."""
    img = np.empty((size, size, 3), np.float32)
    img[:] = rng.integers(0, 256, 3)
    d = max(2, size // 4)  # distractor square anywhere
    y, x = rng.integers(0, size - d, 2)
    img[y:y + d, x:x + d] = rng.integers(0, 256, 3)
    g = size // 2  # identity grid in the middle, jittered
    cell = g // GRID
    oy, ox = (size - cell * GRID) // 2 + rng.integers(-size // 16, size // 16 + 1, 2)
    grid = np.repeat(np.repeat(code, cell, 0), cell, 1)
    img[oy:oy + cell * GRID, ox:ox + cell * GRID] = grid
    img = img * rng.uniform(0.8, 1.2) + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(img):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def write_rec(root, rng, codes, per_id, size):
    n_ids = len(codes)
    n_img = n_ids * per_id
    first_id = n_img + 1
    with IndexedRecordWriter(os.path.join(root, "train.idx"), os.path.join(root, "train.rec")) as w:
        w.write_idx(0, pack([first_id, first_id + n_ids], b""))
        key = 1
        for label in range(n_ids):
            for _ in range(per_id):
                w.write_idx(key, pack(float(label), encode(draw_face(rng, codes[label], size)), id=key))
                key += 1
        for label in range(n_ids):
            start = 1 + label * per_id
            w.write_idx(first_id + label, pack([start, start + per_id], b""))
    with open(os.path.join(root, "property"), "w") as f:
        f.write(f"{n_ids},{size},{size}\n")


def write_bin(path, rng, codes, n_pairs, size):
    bins, issame = [], []
    for _ in range(n_pairs):
        same = bool(rng.random() < 0.5)
        a = int(rng.integers(len(codes)))
        b = a if same else int((a + rng.integers(1, len(codes))) % len(codes))
        bins += [encode(draw_face(rng, codes[a], size)), encode(draw_face(rng, codes[b], size))]
        issame.append(same)
    with open(path, "wb") as f:
        pickle.dump((bins, issame), f, protocol=2)


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--ids", type=int_range(2), default=40)
    p.add_argument("--per_id", type=positive_int, default=24)
    p.add_argument("--size", type=int_range(16, 1024), default=112)
    p.add_argument("--pairs", type=positive_int, default=200, help="pairs per .bin file")
    p.add_argument("--bins", default="lfw,agedb_30,cfp_fp")
    p.add_argument("--no_prepare", action="store_true",  # not add_bool: `--no_prepare OUT` must leave OUT alone
                   help="leave only the raw files")
    a = p.parse_args(argv)
    root = os.path.join(a.out, "faces_emore")
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    codes = identity_codes(rng, a.ids)
    write_rec(root, rng, codes, a.per_id, a.size)
    for name in filter(None, a.bins.split(",")):
        write_bin(os.path.join(root, f"{name}.bin"), rng, codes, a.pairs, a.size)
    if not a.no_prepare:
        from prepare_data import prepare  # tools/ is on sys.path when run as a script

        prepare(root, workers=1, quiet=True)
    print(os.path.abspath(root))


if __name__ == "__main__":
    main()

"""Write a small, learnable ImageNet in the layout the real one is used in:
OUT/train/<wnid>/<wnid>_<n>.JPEG and OUT/val/<wnid>/ILSVRC2012_val_<n>.JPEG.

Each class has its own hue (the label is drawn into the pixels): the image is a gradient of
that hue with random brightness and saturation, a few stripes at a class-specific angle,
random-colour distractor blobs and pixel noise, at a random size and aspect ratio, saved as
JPEG. Random crops and flips keep the hue, so a small HRNet learns it in a few CPU epochs.
Deterministic from --seed. Prints the --data_path to use as its last line.

Usage: python tools/make_demo_data.py OUT [--classes 10] [--train_per_class 48] [--val_per_class 16]
       [--seed 0] [--min_size 72] [--max_size 112]
"""
import argparse
import colorsys
import os
import sys

import numpy as np
from PIL import Image


def draw(rng, label, num_classes, min_size=72, max_size=112):
    w, h = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
    hue = (label / num_classes + rng.normal(0, 0.008)) % 1.0
    sat = rng.uniform(0.55, 0.95)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.pi * label / num_classes
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / 14) + rng.uniform(0, 6.3))
    value = rng.uniform(0.45, 0.9) * (0.75 + 0.25 * stripes)
    base = np.array(colorsys.hsv_to_rgb(hue, sat, 1.0), dtype=np.float32)
    img = value[..., None] * base[None, None, :]
    for _ in range(int(rng.integers(1, 4))):  # distractors in random colours
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 14)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 1, size=3)
    img += rng.normal(0, 0.05, size=img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder (created)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train_per_class", type=int, default=48)
    p.add_argument("--val_per_class", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min_size", type=int, default=72, help="smallest image side (pixels)")
    p.add_argument("--max_size", type=int, default=112, help="largest image side (ImageNet's are ~400x350)")
    a = p.parse_args(argv)
    if a.classes < 2 or a.train_per_class < 1 or a.val_per_class < 1 or not 8 <= a.min_size <= a.max_size:
        print("Error: need --classes >= 2, at least one train and one val image per class and "
              "8 <= --min_size <= --max_size", file=sys.stderr)
        return 1
    rng = np.random.default_rng(a.seed)
    out = os.path.abspath(a.out)
    wnids = [f"n{90000000 + 1111 * k:08d}" for k in range(a.classes)]
    val_no = 0
    for split, per_class in (("train", a.train_per_class), ("val", a.val_per_class)):
        for label, wnid in enumerate(wnids):
            folder = os.path.join(out, split, wnid)
            os.makedirs(folder, exist_ok=True)
            for n in range(per_class):
                if split == "train":
                    name = f"{wnid}_{n + 1}.JPEG"
                else:
                    val_no += 1
                    name = f"ILSVRC2012_val_{val_no:08d}.JPEG"
                draw(rng, label, a.classes, a.min_size, a.max_size).save(os.path.join(folder, name), "JPEG", quality=90)
    print(f"[demo] {a.classes} classes, {a.classes * a.train_per_class} train / {a.classes * a.val_per_class} val "
          f"JPEG images under {out}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

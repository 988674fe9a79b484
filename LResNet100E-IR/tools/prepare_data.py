"""Unpack faces_emore train.rec into imgs/<label>/<key>.jpg, as upstream's prepare_data.py.

Upstream decodes each record with cv2 (BGR array), hands the array to PIL as if it were RGB and saves
it at quality 95, so the saved files have R and B swapped; training reads them with PIL and so feeds
BGR. This tool keeps that behaviour (the same bytes a TreB1eN user would get) without mxnet.
Written to imgs.tmp/ first and renamed at the end, so an interrupted run leaves no half folder.
The verification .bin files are read directly at train/eval time (no bcolz cache).

    python tools/prepare_data.py --data_path ./data/faces_emore [--workers 4]
"""
import argparse
import os
import shutil
import sys
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from face_arcface.faces_emore import RecordFaces, decode_bgr, scalar_label
from face_arcface.recordio import unpack
from PIL import Image

from common.cli import ArgumentParser, add_bool, positive_int
from common.errors import UserError, main_guard

cv2.setNumThreads(1)
_DATASET = None


def _init(ds):
    global _DATASET
    _DATASET = ds


def _write_chunk(args):
    out_dir, lo, hi, skip = args
    n = 0
    for i in range(lo, hi):
        key = int(_DATASET.keys[i])
        header, payload = unpack(_DATASET.reader.read_idx(key))
        img = decode_bgr(payload, f"{_DATASET.reader.rec_path} record {key}", skip)
        if img is None:
            continue
        label_dir = os.path.join(out_dir, str(scalar_label(header.label)))
        os.makedirs(label_dir, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(img)).save(os.path.join(label_dir, f"{key}.jpg"), quality=95)
        n += 1
    return n


def prepare(data_path, workers=1, skip_bad=False, quiet=False):
    data_path = os.fspath(data_path)
    ds = RecordFaces(data_path, input_size=0, skip_bad=skip_bad)
    final, tmp = os.path.join(data_path, "imgs"), os.path.join(data_path, "imgs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    n = len(ds)
    step = max(1, min(20000, -(-n // max(1, workers * 4))))
    chunks = [(tmp, lo, min(n, lo + step), skip_bad) for lo in range(0, n, step)]
    if workers > 1:
        with Pool(workers, initializer=_init, initargs=(ds,)) as pool:
            written = sum(pool.imap_unordered(_write_chunk, chunks))
    else:
        _init(ds)
        written = sum(_write_chunk(c) for c in chunks)
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    if not quiet:
        print(f"wrote {written} images of {ds.num_classes} identities to {final}", flush=True)
    return final


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", "--rec_path", "-r", dest="data_path", required=True,
                   help="faces_emore folder holding train.rec, train.idx (and property, *.bin)")
    p.add_argument("--workers", type=positive_int, default=min(8, os.cpu_count() or 1))
    add_bool(p, "--skip_bad_images", default=False)
    a = p.parse_args(argv)
    if not os.path.isdir(a.data_path):
        raise UserError(f"--data_path not found (expected the faces_emore directory): {a.data_path}")
    prepare(a.data_path, a.workers, a.skip_bad_images)


if __name__ == "__main__":
    main()

"""Prepare Market-1501 in upstream's layout: images/ (renamed), partitions.pkl,
train_test_split.pkl, ori_to_new_im_name.pkl.

    python tools/transform_market1501.py --zip_file Market-1501-v15.09.15.zip --save_dir market1501
    python tools/transform_market1501.py --raw_dir Market-1501-v15.09.15 --save_dir market1501
    python tools/transform_market1501.py --check market1501      # a prepared folder, ours or upstream's

Selection and naming as upstream's transform_market1501.py + mapping_im_names_market1501.py:
bounding_box_train (all), bounding_box_test (without '-1' junk, '0000' distractors kept as id 0),
query (all), gt_bbox (only (id, cam) pairs that occur in query: the multi-query images);
new name '{id:08d}_{cam:04d}_{k:08d}.jpg' with k counted per (id, cam) over the four folders.
--check reads the three pickles of a prepared folder (upstream's Python 2 files too, as data:
nothing in them can run code) and checks that they agree with each other and with images/.
"""
import argparse
import os
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aligned_reid.market1501 import RAW_DIRS, check_prepared, prepare

from common.cli import ArgumentParser, nonneg_int
from common.errors import UserError, main_guard


def find_raw_root(directory: str) -> str:
    """The folder under `directory` (itself included) that holds bounding_box_train."""
    for root, dirs, _ in os.walk(directory):
        if "bounding_box_train" in dirs:
            return root
    raise UserError(f"no bounding_box_train folder under {directory} (expected the extracted Market-1501 "
                    f"folders {', '.join(RAW_DIRS)})")


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw_dir", help="extracted Market-1501 folder (or a folder above it)")
    src.add_argument("--zip_file", help="Market-1501-v15.09.15.zip, extracted into --save_dir first")
    src.add_argument("--check", metavar="DIR", help="check a prepared market1501 folder and exit")
    # upstream's name for the output: the prepared dataset folder that train.py reads as --data_path
    p.add_argument("--save_dir", help="output: the prepared market1501 directory (--data_path)")
    p.add_argument("--num_val_ids", type=nonneg_int, default=100,
                   help="ids held out in the (unused by default) val split")
    a = p.parse_args(argv)
    if a.check:
        if not os.path.isdir(a.check):
            raise UserError(f"prepared Market-1501 folder not found: {a.check}")
        print("\n".join(check_prepared(os.path.abspath(a.check))))
        return
    if not a.save_dir:
        p.error("--save_dir is required with --raw_dir / --zip_file")
    save_dir = os.path.abspath(os.path.expanduser(a.save_dir))
    if a.zip_file:
        if not os.path.isfile(a.zip_file):
            raise UserError(f"zip file not found: {a.zip_file}")
        try:
            with zipfile.ZipFile(a.zip_file) as z:
                z.extractall(save_dir)
        except zipfile.BadZipFile:
            raise UserError(f"not a zip file: {a.zip_file}") from None
        raw = find_raw_root(save_dir)
    else:
        if not os.path.isdir(a.raw_dir):
            raise UserError(f"raw Market-1501 folder not found: {a.raw_dir}")
        raw = find_raw_root(os.path.abspath(a.raw_dir))
    parts = prepare(raw, save_dir, num_val_ids=a.num_val_ids)
    marks = parts["test_marks"]
    print(f"trainval {len(parts['trainval_im_names'])} images / {len(parts['trainval_ids2labels'])} ids; "
          f"test: query {marks.count(0)}, multi-query {marks.count(2)}, gallery {marks.count(1)}")
    print(f"prepared Market-1501 written to {save_dir}")
    print(save_dir)


if __name__ == "__main__":
    main()

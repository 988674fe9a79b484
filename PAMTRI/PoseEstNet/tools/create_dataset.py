"""Build the PoseEstNet data folder from a VeRi download and the NVlabs keypoint annotations.

    python tools/create_dataset.py --veri /data/VeRi --annot PAMTRI/PoseEstNet/data/veri/annot --PoseData data/veri

Result (upstream layout):  PoseData/annot/label_{train,test}.csv
                           PoseData/images/image_{train,test}/<name>.jpg
Both annotation sets list images of VeRi's image_train/. Files are hard-linked when possible,
else copied.
"""
import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poseestnet.veri import read_annotations

from common.errors import UserError, main_guard


def link_or_copy(src, dst):
    if os.path.exists(dst):
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@main_guard
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--veri", required=True, help="VeRi folder holding image_train/")
    p.add_argument("--annot", default=None, help="folder with label_train.csv and label_test.csv "
                                                  "(default: PoseData/annot, already in place)")
    p.add_argument("--PoseData", "--pose_data", dest="pose_data", required=True, help="output folder")
    p.add_argument("--sets", nargs="+", default=["train", "test"])
    args = p.parse_args(argv)
    src_images = os.path.join(args.veri, "image_train")
    if not os.path.isdir(src_images):
        raise UserError(f"VeRi image folder not found: {src_images}")
    annot_out = os.path.join(args.pose_data, "annot")
    os.makedirs(annot_out, exist_ok=True)
    for s in args.sets:
        csv_out = os.path.join(annot_out, f"label_{s}.csv")
        if args.annot:
            csv_in = os.path.join(args.annot, f"label_{s}.csv")
            records = read_annotations(csv_in)  # validates the file before anything is copied
            if os.path.abspath(csv_in) != os.path.abspath(csv_out):
                shutil.copyfile(csv_in, csv_out)
        else:
            records = read_annotations(csv_out)
        out_dir = os.path.join(args.pose_data, "images", f"image_{s}")
        os.makedirs(out_dir, exist_ok=True)
        missing = [r["name"] for r in records if not os.path.isfile(os.path.join(src_images, r["name"]))]
        if missing:
            raise UserError(f"{len(missing)} images of label_{s}.csv are not in {src_images}, e.g. {missing[0]}")
        for r in records:
            link_or_copy(os.path.join(src_images, r["name"]), os.path.join(out_dir, r["name"]))
        print(f"{s}: {len(records)} images -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

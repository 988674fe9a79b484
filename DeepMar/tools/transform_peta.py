"""PETA.mat -> peta_dataset.pkl + peta_partition.pkl (upstream transform_peta, same keys).

    python tools/transform_peta.py --save_dir=/data/peta     # reads /data/peta/PETA.mat
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

from deepmar import peta

from common.cli import ArgumentParser
from common.errors import main_guard


@main_guard
def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--save_dir", "--data_path", dest="save_dir", required=True,
                   help="folder holding PETA.mat and images/; the pickles are written there")
    args = p.parse_args(argv)
    dataset, partition = peta.transform(args.save_dir)
    print(f"{len(dataset['image'])} images, {len(dataset['att_name'])} labels; partition 0: "
          f"train {len(partition['train'][0])}, val {len(partition['val'][0])}, test {len(partition['test'][0])}, "
          f"trainval {len(partition['trainval'][0])}")
    print(f"wrote {peta.DATASET_PKL} and {peta.PARTITION_PKL} in {args.save_dir}")


if __name__ == "__main__":
    main()

"""Evaluate a PoseEstNet checkpoint on the VeRi keypoint test set: `Test:` lines and the
per-joint PCK table (Wheel, Fender, Back, Front, WindshieldBack, WindshieldFront, Mean, Mean@0.1).

    python eval.py --cfg experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml --data_dir data/veri \
        --ckpt_path model_best.pth
    python eval.py --cfg ... TEST.MODEL_FILE model_best.pth          (upstream tools/test.py style)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from poseestnet import flags
from poseestnet.config import load_config
from poseestnet.function import validate
from poseestnet.loss import JointsMSELoss
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.veri import VeRiKeypoints, collate_counting
from poseestnet.weights import load_pose_weights

from common import amp, distributed
from common.cli import nonneg_int, positive_int
from common.data import loader_kwargs
from common.errors import main_guard
from common.progress import Console
from common.sampling import ShardSampler


def get_args(argv=None):
    p = flags.new_parser(__doc__)
    p.add_argument("--data_dir", default="", help="PoseEstNet data root with images/ and annot/ (DATASET.ROOT)")
    p.add_argument("--ckpt_path", default="", help="weights to evaluate (default TEST.MODEL_FILE)")
    p.add_argument("--batch_size", type=positive_int, default=None, help="default TEST.BATCH_SIZE_PER_GPU")
    p.add_argument("--workers", type=nonneg_int, default=None)
    flags.add_bool(p, "--skip_bad_images", default=False)
    return flags.parse_args(p, argv)


@main_guard
def main(argv=None):
    args = get_args(argv)
    cfg = load_config(args.cfg, list(args.opts), args.data_dir or None)
    dist = distributed.init(flags.requested_device(args), args.device_id)
    log = Console(dist.is_main).log
    model = get_pose_net(cfg)
    load_pose_weights(model, args.ckpt_path or cfg.TEST.MODEL_FILE)
    model = model.to(dist.device)
    dataset = VeRiKeypoints(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False, skip_bad_images=args.skip_bad_images)
    workers = cfg.WORKERS if args.workers is None else args.workers
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size or cfg.TEST.BATCH_SIZE_PER_GPU,
        sampler=ShardSampler(len(dataset), dist.rank, dist.world_size, pad=True), collate_fn=collate_counting,
        **loader_kwargs(workers, dist.device))
    log(f"=> evaluating {args.ckpt_path or cfg.TEST.MODEL_FILE} on {cfg.DATASET.TEST_SET}: {len(dataset)} images")
    precision = amp.from_args(args, dist.device)
    validate(cfg, loader, dataset, model, JointsMSELoss(cfg.LOSS.USE_TARGET_WEIGHT), dist, precision, log=log)
    distributed.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate HRNet-C weights on the ImageNet val folders (upstream tools/valid.py): prints
the `Test:` line with top-1/top-5 accuracy and error (%).

    python eval.py /data/imagenet --cfg w18 --testModel hrnetv2_w18_imagenet_pretrained.pth

Weights: --testModel / --pth_path (a bare state_dict such as model_best.pth.tar, final_state.pth.tar,
the released .pth files, or a checkpoint.pth.tar); default <modelDir>/imagenet/<cfg>/final_state.pth.tar.
"""
import pprint
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from hrnet_cls.checkpoints import load_weights
from hrnet_cls.cls_hrnet import get_cls_net
from hrnet_cls.config import cfg_name, load_config, output_dir
from hrnet_cls.function import validate
from hrnet_cls.loaders import build_datasets, make_val_loader
from hrnet_cls.run_log import RunLog

from common import amp, distributed
from common.cli import ArgumentParser, nonneg_int, positive_int
from common.device import add_device_args
from common.errors import UserError, main_guard


def get_args_parser(add_help=True):
    p = ArgumentParser(description="HRNet-C ImageNet evaluation", add_help=add_help)
    p.add_argument("data_path", nargs="?", default=None, help="dataset root holding val/ (and train/) class folders")
    p.add_argument("--data_path", dest="data_path_opt", metavar="DATA_PATH", default=None,
                   help="the same as the positional data_path")
    p.add_argument("--cfg", required=True, help="experiment yaml (.yaml/.yml) or short name (w18, w32, ..., demo_tiny)")
    p.add_argument("--modelDir", default="", help="OUTPUT_DIR (default weights: its final_state.pth.tar)")
    p.add_argument("--logDir", default="")
    p.add_argument("--dataDir", default="", help="DATA_DIR: without data_path, read <dataDir>/imagenet/images")
    p.add_argument("--testModel", "--pth_path", dest="testModel", default="", help="weights to evaluate")
    p.add_argument("--bs", type=positive_int, default=None,
                   help="batch size per device (default TEST.BATCH_SIZE_PER_GPU x len(GPUS))")
    p.add_argument("--nproc", type=positive_int, default=None,
                   help="CPU cores for loader workers: nproc // processes each")
    p.add_argument("--workers", type=nonneg_int, default=None,
                   help="loader workers (overrides --nproc and WORKERS)")
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--skip_bad_images", action="store_true")
    p.add_argument("--cache_images", choices=("auto", "on", "off"), default="auto")
    add_device_args(p)
    amp.add_amp_args(p)
    return p


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    cfg, cfg_path = load_config(args.cfg, args.modelDir, args.logDir, args.dataDir, args.testModel)
    data_path = args.data_path or args.data_path_opt or cfg.DATASET.ROOT
    dist = distributed.init(args.device, args.device_id)
    device = dist.device
    final_dir = output_dir(cfg, cfg_path)
    log = RunLog(final_dir if dist.is_main else None, cfg_name(cfg_path), "valid", dist.is_main)
    log(pprint.pformat(vars(args)))

    weights = Path(cfg.TEST.MODEL_FILE) if cfg.TEST.MODEL_FILE else final_dir / "final_state.pth.tar"
    if not weights.is_file():
        raise UserError(f"weights not found: {weights} (give --testModel/--pth_path)")
    model = get_cls_net(cfg)
    load_weights(model, weights, "weights")
    log(f"=> loading model from {weights}")
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    _, val_set = build_datasets(data_path, cfg.MODEL.IMAGE_SIZE[0], cfg.MODEL.NUM_CLASSES, need_train=False,
                                skip_bad=args.skip_bad_images, cache=args.cache_images, log=log)
    bs = args.bs or cfg.TEST.BATCH_SIZE_PER_GPU * len(cfg.GPUS)
    workers = (args.workers if args.workers is not None
               else (max(1, args.nproc // dist.world_size) if args.nproc else cfg.WORKERS))
    loader = make_val_loader(val_set, bs, workers, device, dist)
    validate(model, loader, torch.nn.CrossEntropyLoss().to(device), amp.from_args(args, device), device=device,
             dist=dist, log=log, channels_last=args.channels_last)
    distributed.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

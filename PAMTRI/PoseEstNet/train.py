"""Train PoseEstNet (HRNet-W32 pose, 36 vehicle keypoints) on the VeRi keypoint annotations.

    python train.py --cfg experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml --data_dir data/veri
    python train.py --cfg ... --pre_trained True --pre_ckpt_path hrnet_w32-36af842e.pth   (MindSpore card flags)
    python train.py --cfg ... TRAIN.END_EPOCH 10 TRAIN.BATCH_SIZE_PER_GPU 16               (upstream overrides)

Writes <OUTPUT_DIR>/<DATASET>/<MODEL.NAME>/<cfg name>/{checkpoint.pth, model_best.pth, final_state.pth,
metrics.jsonl} (metrics.jsonl: one JSON row per logged step and per epoch, common/metrics_file.py).
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from poseestnet import flags
from poseestnet.checkpoints import Checkpoints, recipe_of
from poseestnet.config import cfg_name, load_train_config
from poseestnet.function import train_one_epoch, validate
from poseestnet.loss import JointsMSELoss
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.veri import EpochIndexSampler, VeRiKeypoints, collate_counting

from common import amp, distributed
from common.checkpoint import seed_everything
from common.cli import nonneg_int, positive_int
from common.data import loader_kwargs
from common.errors import UserError, main_guard
from common.fps import FpsMeter
from common.metrics_file import FILE_NAME as METRICS_NAME
from common.metrics_file import MetricsFile, add_tensorboard_arg
from common.progress import Console
from common.sampling import ShardSampler

WARMUP_STEPS = 2  # first steps of every epoch left out of FPS (worker start, allocator warm-up)


def get_args(argv=None):
    p = flags.new_parser(__doc__)
    # the MindSpore card's flags
    p.add_argument("--data_dir", default="", help="PoseEstNet data root with images/ and annot/ (DATASET.ROOT)")
    flags.add_bool(p, "--pre_trained", default=None, help="load ImageNet HRNet weights (MODEL.INIT_WEIGHTS)")
    p.add_argument("--pre_ckpt_path", default=None, help="ImageNet HRNet-W32-C weights (MODEL.PRETRAINED)")
    flags.add_bool(p, "--distribute", default=False, help="accepted for the card; distribution follows torchrun")
    # ours (and --device, --device_id, --amp, --opt_level, --loss_scale from flags.new_parser)
    flags.add_bool(p, "--channels_last", default=False, help="channels_last memory format")
    p.add_argument("--seed", type=nonneg_int, default=1)
    p.add_argument("--workers", type=nonneg_int, default=None, help="data loader workers (WORKERS)")
    p.add_argument("--batch_size", type=positive_int, default=None,
                   help="images per device per step (TRAIN.BATCH_SIZE_PER_GPU)")
    p.add_argument("--epochs", type=positive_int, default=None, help="TRAIN.END_EPOCH")
    p.add_argument("--max_steps", type=nonneg_int, default=0, help="stop after this many optimizer steps (0: no limit)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="checkpoint.pth to continue from; bare --resume: the run folder's checkpoint.pth "
                        "(none yet: start from scratch, logged)")
    flags.add_bool(p, "--allow_recipe_change", default=False,
             help="resume although the recipe (lr, schedule, batch, seed, sizes) differs from the checkpoint's")
    p.add_argument("--val_freq", type=positive_int, default=1,
                   help="validate every N epochs (upstream: 1) and always after the last one")
    p.add_argument("--output_dir", default=None, help="OUTPUT_DIR")
    flags.add_bool(p, "--skip_bad_images", default=False)
    flags.add_bool(p, "--cache_images", default=False, help="decode every image once, before training")
    add_tensorboard_arg(p)
    return flags.parse_args(p, argv)


def lr_at(cfg, epoch):
    """Upstream steps MultiStepLR at the start of each epoch, so every decay lands one epoch
    before its milestone: epoch e (0-based) uses LR * FACTOR^#{m <= e+1}."""
    return cfg.TRAIN.LR * cfg.TRAIN.LR_FACTOR ** sum(1 for m in cfg.TRAIN.LR_STEP if m <= epoch + 1)


def build_optimizer(cfg, model):
    name = cfg.TRAIN.OPTIMIZER.lower()
    if name == "adam":  # upstream builds Adam without weight decay: TRAIN.WD is unused
        return torch.optim.Adam(model.parameters(), lr=cfg.TRAIN.LR, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.TRAIN.LR, momentum=cfg.TRAIN.MOMENTUM,
                               weight_decay=cfg.TRAIN.WD, nesterov=cfg.TRAIN.NESTEROV, foreach=True)
    raise UserError(f"TRAIN.OPTIMIZER must be adam or sgd, got {cfg.TRAIN.OPTIMIZER}")


def run_folder(cfg, args, is_main):
    """OUTPUT_DIR/<DATASET>/<MODEL.NAME>/<cfg name>, upstream's layout (made by the main rank)."""
    out_dir = os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.DATASET, cfg.MODEL.NAME, cfg_name(args.cfg))
    if is_main:
        os.makedirs(out_dir, exist_ok=True)
    return out_dir


def per_device_batch(cfg, args, world_size):
    if world_size > 1:
        return args.batch_size or cfg.TRAIN.BATCH_SIZE_PER_GPU
    # upstream runs one DataParallel process over GPUS: that whole batch on one device
    return args.batch_size or cfg.TRAIN.BATCH_SIZE_PER_GPU * len(cfg.GPUS)


def build_loaders(cfg, args, dist, batch, log):
    """-> (train loader of (index, epoch) batches, every rank the same number; validation loader, sharded and
    padded so every rank gathers as many: the repeats write the same predictions)."""
    train_set = VeRiKeypoints(cfg, cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET, True, seed=args.seed,
                              skip_bad_images=args.skip_bad_images, cache_images=args.cache_images)
    valid_set = VeRiKeypoints(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False,
                              skip_bad_images=args.skip_bad_images, cache_images=args.cache_images)
    log(f"=> train {cfg.DATASET.TRAIN_SET}: {len(train_set)} images, "
        f"test {cfg.DATASET.TEST_SET}: {len(valid_set)} images")
    order = EpochIndexSampler(len(train_set), dist.rank, dist.world_size, seed=args.seed, shuffle=cfg.TRAIN.SHUFFLE)
    kw = loader_kwargs(cfg.WORKERS, dist.device)
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=torch.utils.data.BatchSampler(order, batch, drop_last=False),
        collate_fn=collate_counting, **kw)
    test_batch = cfg.TEST.BATCH_SIZE_PER_GPU * (1 if dist.world_size > 1 else len(cfg.GPUS))
    valid_loader = torch.utils.data.DataLoader(
        valid_set, batch_size=test_batch, sampler=ShardSampler(len(valid_set), dist.rank, dist.world_size, pad=True),
        collate_fn=collate_counting, **kw)
    return train_loader, valid_loader


def validation_due(cfg, args, epoch, step):
    """Every --val_freq epochs (upstream: every epoch) and after the last one (END_EPOCH or --max_steps)."""
    last = epoch + 1 == cfg.TRAIN.END_EPOCH or bool(args.max_steps and step >= args.max_steps)
    return (epoch + 1) % max(1, args.val_freq) == 0 or last


def evaluate(cfg, args, model, criterion, valid_loader, dist, precision, log):
    """validate() with rank 0's BatchNorm statistics (the model the checkpoint holds) -> (perf, metrics for
    metrics.jsonl: PCK (%) of the upstream table, PCK = its Mean, PCK_<group> its columns; without the table
    the validation heatmap accuracy)."""
    distributed.sync_buffers_from_main(model, dist)
    perf, name_value = validate(cfg, valid_loader, valid_loader.dataset, model, criterion, dist, precision,
                                args.channels_last, log)
    results = {f"PCK_{k}": v for k, v in name_value.items()} if name_value else {}
    if name_value:
        results["PCK"] = perf
    elif perf is not None:
        results["val_heatmap_acc"] = perf
    return perf, results


@main_guard
def main(argv=None):
    # main_guard also reduces a UserError re-raised from a DataLoader worker to its one-line message
    return run(get_args(argv))


def run(args):
    cfg = load_train_config(args)
    dist = distributed.init(flags.requested_device(args), args.device_id)
    console = Console(dist.is_main)  # rank 0's log lines; a per-epoch progress bar when stdout is a terminal
    log = console.log
    seed_everything(args.seed)
    batch = per_device_batch(cfg, args, dist.world_size)
    global_batch = batch * dist.world_size
    out_dir = run_folder(cfg, args, dist.is_main)
    log(f"=> PoseEstNet {cfg.MODEL.NAME}: cfg {args.cfg or 'default'}, device {dist.device}, "
        f"world {dist.world_size}, batch {batch}/device ({global_batch} global), output {out_dir}")
    train_loader, valid_loader = build_loaders(cfg, args, dist, batch, log)

    model = get_pose_net(cfg, is_train=True, log=log).to(dist.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    precision = amp.from_args(args, dist.device)
    model, optimizer = precision.initialize(model, build_optimizer(cfg, model))
    criterion = JointsMSELoss(cfg.LOSS.USE_TARGET_WEIGHT)

    checkpoints = Checkpoints(out_dir, dist.is_main, model, optimizer, precision, args, cfg,
                              recipe_of(cfg, args, global_batch))
    # an explicit file; bare --resume, AUTO_RESUME (upstream yaml) or a torchrun restart: this run folder's
    # checkpoint.pth, and when there is none yet the run starts from scratch and says so
    resumed = checkpoints.resume(args.resume if args.resume is not None else ("auto" if cfg.AUTO_RESUME else None),
                                 log)
    begin_epoch, start, step, best_perf = resumed or (cfg.TRAIN.BEGIN_EPOCH, 0, 0, -1.0)
    # metrics.jsonl beside checkpoint.pth (rank 0); a resume keeps the rows up to its checkpoint (global step,
    # completed epochs), so a run killed and resumed has each step and epoch once. Epochs 1-based, as "epoch: N".
    metrics = MetricsFile(os.path.join(out_dir, METRICS_NAME), enabled=dist.is_main,
                          resume_step=step if resumed else None, resume_epoch=begin_epoch if resumed else None,
                          tensorboard_dir=args.tensorboard)
    model = distributed.wrap_ddp(model, dist)
    fps = FpsMeter(global_batch, warmup=WARMUP_STEPS)
    log(f"=> AMP {precision.mode}; FPS@all: images/s of all ranks, {fps.describe()}")
    perf = None
    for epoch in range(begin_epoch, cfg.TRAIN.END_EPOCH):
        lr = lr_at(cfg, epoch)
        stats = train_one_epoch(cfg, args, model, criterion, optimizer, precision, train_loader, dist, epoch, lr,
                                start, step, fps, metrics, console, checkpoints.path)
        step, start = stats.step, 0
        row = dict(lr=lr, images_per_sec=fps.epoch_fps, losses={"loss": stats.loss_avg, "heatmap_acc": stats.acc_avg})
        if stats.stopped_at is not None:  # the epoch's row is written again, whole, by the resume that ends it
            metrics.epoch(epoch + 1, step, **row)
            checkpoints.save(epoch, stats.stopped_at, step, perf, best_perf)
            log(f"=> stopped after --max_steps {args.max_steps}; checkpoint {checkpoints.path} (resume with --resume)")
            break
        results, is_best = {}, False
        if validation_due(cfg, args, epoch, step):
            perf, results = evaluate(cfg, args, model, criterion, valid_loader, dist, precision, log)
            is_best = perf is not None and perf >= best_perf
            best_perf = perf if is_best else best_perf
            log(f"=> saving checkpoint to {out_dir}")
        metrics.epoch(epoch + 1, step, metrics=results, **row)
        checkpoints.save(epoch + 1, 0, step, perf, best_perf, is_best)
        if args.max_steps and step >= args.max_steps:
            break
    metrics.close()
    checkpoints.save_final()
    if fps.fps is not None:
        log(f"FPS@all {fps.fps:.2f} images/s (whole run, {dist.world_size} rank(s), {fps.describe()})")
    log(f"=> saving final model state to {os.path.join(out_dir, 'final_state.pth')}")
    distributed.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

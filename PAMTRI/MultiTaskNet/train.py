#!/usr/bin/env python3
"""Train MultiTaskNet (PAMTRI) on VeRi-776: vehicle re-id with colour/type as side tasks,
optionally fed with PoseEstNet's 36 heatmaps, 13 segment masks and 108 keypoint values.

    python train.py --root data --heatmapaware                         # the card's model, "h": keypoints + colour/type
    python train.py --root data --keyptaware False --multitask         # NV/AZ recipe: RGB, colour/type, no keypoints
    torchrun --nproc_per_node=8 train.py --root data --batch_size 256  # 8 devices, 8 x (8 ids x 4) PK batches

The model card (MindSpore port) always builds the keypoint-aware multitask model, so --keyptaware and
--multitask default to True; NVIDIA's variants are reached with --keyptaware False / --multitask False.

Upstream recipe (NVlabs/PAMTRI): DenseNet-121, Adam lr 3e-4, coupled L2 5e-4, MultiStepLR [30,60]
x0.1 per epoch, 120 epochs, batches of 8 ids x 4 images, xent + triplet (+0.125 colour, +0.125 type).
"""
import datetime
import functools
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repo root: common/
sys.path.insert(0, str(HERE))             # multitasknet/

import argparse

import torch
from multitasknet.checkpoints import (
    Progress,
    checkpoint_name,
    imagenet_features,
    latest_checkpoint,
    load_matching,
    resume,
    save_checkpoint,
    state_dict_of,
)
from multitasknet.dataset import VeRiDataset, collate, loader_options, num_channels
from multitasknet.densenet import ARCHS
from multitasknet.device import add_device_flags, launched
from multitasknet.evaluation import make_test_loaders, run_test
from multitasknet.flags import add_data_args
from multitasknet.losses import MultiTaskLoss
from multitasknet.model import MultiTaskNet
from multitasknet.sampler import RandomIdentityBatchSampler, ids_per_batch
from multitasknet.transforms import Normalizer
from multitasknet.veri import VeRi
from torch.utils.data import DataLoader

from common import amp, checkpoint, distributed
from common.cli import ArgumentParser, add_bool, float_range, nonneg_float, nonneg_int, positive_float, positive_int
from common.errors import UserError, main_guard
from common.fps import FpsMeter
from common.meters import AverageMeter
from common.metrics_file import FILE_NAME as METRICS_NAME
from common.metrics_file import MetricsFile, add_tensorboard_arg
from common.progress import Console, Tee

FPS_WARMUP_STEPS = 6  # upstream's Fps_sum_avg skips batch_idx 0..5 of every epoch
LR_SCALING = {"none": lambda w: 1.0, "sqrt": math.sqrt, "linear": float}


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    add_data_args(g)
    g.add_argument("--split-id", type=nonneg_int, default=0,
                   help="accepted for upstream compatibility (VeRi has one split)")
    add_bool(g, "--skip_bad_images",
             help="skip unreadable or truncated training images (each logged, counted per epoch) instead of stopping")
    g = p.add_argument_group("model")
    g.add_argument("-a", "--arch", default="densenet121", choices=sorted(ARCHS),
                   help="densenet121 (upstream); densenet_tiny is a toy size for tests and CPU demos")
    add_bool(g, "--keyptaware", default=True,
             help="feed the 108 normalised keypoint values to the heads (default True, the card's model; "
                  "NVIDIA's recipes: False)")
    add_bool(g, "--multitask", default=True,
             help="colour and type heads beside the id head (default True, the card's model)")
    add_bool(g, "--pre_trained", default=None,
             help="start from ImageNet weights (default: when --pre_ckpt_path is given)")
    g.add_argument("--pre_ckpt_path", "--pretrained_path", dest="pre_ckpt_path", default="",
                   help="torchvision densenet121-a639ec97.pth (nothing is downloaded; without it: random init)")
    g.add_argument("--load-weights", default="",
                   help="initialise from a checkpoint: same-name, same-shape tensors only")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optim", default="adam", choices=["adam", "amsgrad", "sgd", "rmsprop"])
    g.add_argument("--max-epoch", type=positive_int, default=120)
    g.add_argument("--start-epoch", type=nonneg_int, default=0, help="first epoch (0-based) when not resuming")
    g.add_argument("--batch_size", type=positive_int, default=None,
                   help="images per step over all processes (the test scripts' --batch_size); each process takes "
                        "batch_size / processes. Default: --train-batch per process")
    g.add_argument("--train-batch", type=positive_int, default=None,
                   help="images per process per step (= P ids x K instances; upstream form; default 32)")
    g.add_argument("--lr", type=positive_float, default=3e-4, help="learning rate of one process with its batch")
    g.add_argument("--lr_scaling", default="sqrt", choices=sorted(LR_SCALING),
                   help="multiply --lr by f(world size) under torchrun: sqrt (default, Adam), linear or none")
    g.add_argument("--stepsize", type=positive_int, nargs="+", default=[30, 60],
                   help="MultiStepLR milestones (epochs)")
    g.add_argument("--gamma", type=float_range(0, 1, lo_open=True), default=0.1, help="lr factor at each milestone")
    g.add_argument("--weight-decay", type=nonneg_float, default=5e-4, help="coupled L2 on all parameters, as upstream")
    g.add_argument("--margin", type=nonneg_float, default=0.3, help="triplet margin")
    g.add_argument("--num-instances", type=positive_int, default=4, help="images per id in a batch (K)")
    add_bool(g, "--htri-only", help="triplet loss only, no id cross-entropy")
    g.add_argument("--lambda-xent", type=nonneg_float, default=1.0)
    g.add_argument("--lambda-htri", type=nonneg_float, default=1.0)
    g.add_argument("--lambda-vcolor", type=nonneg_float, default=0.125)
    g.add_argument("--lambda-vtype", type=nonneg_float, default=0.125)
    add_bool(g, "--label-smooth", help="label smoothing 0.1 on the three cross-entropies")
    g.add_argument("--max_steps", type=nonneg_int, default=0,
                   help="stop after this many optimizer steps in all (0: no limit)")
    g = p.add_argument_group("speed")
    amp.add_amp_args(g, default_opt_level="O2", default_loss_scale="128")
    g.add_argument("--amp-level", dest="amp_level", default=None, choices=list(amp.OPT_LEVELS),
                   help="MindSpore form: O0 = fp32, O1-O3 = --amp with that --opt_level")
    add_bool(g, "--channels_last", help="NHWC memory format for the convolutions")
    g = p.add_argument_group("run")
    add_device_flags(g)
    add_bool(g, "--distribute", default=None,
             help="expect a torchrun launch (default: follow WORLD_SIZE); True without torchrun is an error")
    g.add_argument("--seed", type=nonneg_int, default=1)
    g.add_argument("--print-freq", type=positive_int, default=1)
    g.add_argument("--eval-step", type=nonneg_int, default=1,
                   help="evaluate every N epochs; 0: never (performance runs)")
    g.add_argument("--start-eval", type=nonneg_int, default=0, help="no evaluation before this epoch")
    add_bool(g, "--evaluate", help="only evaluate (--load-weights) and exit")
    g.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="checkpoint of this script to continue exactly; bare --resume: the newest "
                        "checkpoint_ep*.pth.tar of --save-dir (none yet: start from scratch, logged)")
    add_bool(g, "--allow_recipe_change",
             help="resume although recipe flags (batch, lr, schedule, loss, seed, size) differ from the checkpoint's")
    g.add_argument("--save-dir", default="log", help=f"checkpoints, log_train.txt and {METRICS_NAME}")
    add_tensorboard_arg(g)
    return p


def per_process_batch(args, world_size: int) -> None:
    """The one place where the job's batch becomes each process's: --batch_size (global, the scripts' key)
    or --train-batch (per process, upstream). Sets args.train_batch and args.global_batch."""
    if args.batch_size is not None and args.train_batch is not None:
        raise UserError("give --batch_size (images per step over all processes) or --train-batch (per process), "
                        "not both")
    if args.batch_size is not None:
        if args.batch_size % world_size:
            raise UserError(f"--batch_size {args.batch_size} (images per step over all processes) must be divisible "
                            f"by the number of processes, {world_size}")
        args.train_batch = args.batch_size // world_size
    elif args.train_batch is None:
        args.train_batch = 32
    args.global_batch = args.train_batch * world_size
    try:
        ids_per_batch(args.train_batch, args.num_instances)
    except UserError:
        given = (f"--batch_size {args.batch_size} over {world_size} process(es) gives {args.train_batch} per process"
                 if args.batch_size is not None else f"--train-batch {args.train_batch}")
        raise UserError(f"{given}: the batch of each process must be a positive multiple of --num-instances "
                        f"{args.num_instances} (P vehicle ids x K={args.num_instances} images)") from None


def resolve_args(args, dist):
    """Checks and derived values that need the launch (world size); nothing is read or written yet."""
    per_process_batch(args, dist.world_size)
    if args.amp_level is not None:
        args.amp, args.opt_level = args.amp_level != "O0", args.amp_level
    args.heatmapaware, args.segmentaware = bool(args.heatmapaware), bool(args.segmentaware)
    args.height, args.width = args.height or 256, args.width or 256
    if args.distribute is True and not dist.enabled:
        raise UserError("--distribute True needs a multi-process launch: torchrun --nproc_per_node=N train.py ... "
                        "(test/train_full_8p.sh, MultiTaskNet/scripts/run_distribute_train_{gpu,ascend}.sh)")
    if args.distribute is False and dist.enabled:
        raise UserError("--distribute False, but this process was started by torchrun with "
                        f"WORLD_SIZE={dist.world_size}")
    if args.pre_trained is None:
        args.pre_trained = bool(args.pre_ckpt_path)
    if args.pre_trained and not args.pre_ckpt_path:
        raise UserError("--pre_trained True needs --pre_ckpt_path (torchvision densenet121-a639ec97.pth); "
                        "nothing is downloaded")


def build_optimizer(params, args, lr, device):
    fast = {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}
    if args.optim in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=args.weight_decay, amsgrad=args.optim == "amsgrad", **fast)
    if args.optim == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=args.weight_decay, **fast)
    return torch.optim.RMSprop(params, lr=lr, momentum=0.9, weight_decay=args.weight_decay, foreach=True)


def open_log(args, dist, notes) -> Console:
    """Rank 0's log: stdout tee'd to <save-dir>/log_train.txt (log_test.txt for --evaluate), a bar on terminals
    only; the other ranks print nothing. Starts with the run's settings and the `notes` said before it opened."""
    if dist.is_main:
        checkpoint.clean_stale_temps(args.save_dir)  # temporaries of a write that crashed in an earlier run
        sys.stdout = Tee(sys.stdout, os.path.join(args.save_dir, "log_test.txt" if args.evaluate else "log_train.txt"))
    console = Console(dist.is_main)
    console.log(f"==========\nArgs:{args}\n==========")
    for note in notes:
        console.log(note)
    console.log(f"Batch: {args.global_batch} images per step = {dist.world_size} process(es) x {args.train_batch} "
                f"({args.train_batch // args.num_instances} ids x {args.num_instances})")
    console.log(f"Device: {dist.device}, processes: {dist.world_size}, "
                f"precision: {amp.from_args(args, dist.device).mode}")
    return console


def build_model(args, veri, device, log):
    """MultiTaskNet for this data (ids, colours, types, channels) from ImageNet weights, --load-weights or
    random init, on `device`. Returns (model, cfg): cfg, its constructor arguments, goes into checkpoints."""
    cfg = dict(arch=args.arch, in_channels=num_channels(args.heatmapaware, args.segmentaware),
               keyptaware=bool(args.keyptaware), multitask=bool(args.multitask), num_vids=veri.num_train_vids,
               num_colors=veri.num_train_colors, num_types=veri.num_train_types)
    log(f"Initializing model: {args.arch}")
    features = None
    if args.pre_trained and not args.resume:
        features = imagenet_features(state_dict_of(args.pre_ckpt_path, "--pre_ckpt_path"), args.arch)
        log(f"Loaded ImageNet weights from {args.pre_ckpt_path}")
    elif not args.resume:
        log("No --pre_ckpt_path: the backbone starts from random init (upstream starts from ImageNet weights)")
    model = MultiTaskNet(**cfg, pretrained_features=features)
    log(f"Model size: {sum(p.numel() for p in model.parameters()) / 1e6:.3f} M")
    if args.load_weights:
        load_matching(model, args.load_weights, log)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, cfg


def optimizer_and_schedule(model, args, dist, log):
    """The optimizer at --lr scaled for the number of processes, and the MultiStepLR schedule over epochs."""
    lr = args.lr * LR_SCALING[args.lr_scaling](dist.world_size)
    if dist.enabled:
        log(f"==> {dist.world_size} processes x {args.train_batch} images per step: lr {args.lr:g} scaled "
            f"({args.lr_scaling}) to {lr:g}")
    optimizer = build_optimizer(model.parameters(), args, lr, dist.device)
    return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.stepsize, gamma=args.gamma)


def make_train_loader(veri, args, dist):
    """PK batches (P ids x K images) of this rank; the sampler resumes inside an epoch (set_epoch)."""
    sampler = RandomIdentityBatchSampler(veri.train.vids, args.train_batch, args.num_instances, args.seed,
                                         dist.rank, dist.world_size)
    train_set = VeRiDataset(veri.train, args.heatmapaware, args.segmentaware, train=True, width=args.width,
                            height=args.height, skip_bad_images=args.skip_bad_images)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                        **loader_options(args.workers, dist.device))
    return loader, sampler


@dataclass
class EpochResult:
    global_step: int      # optimizer steps of the run after this epoch
    next_step: int        # one past the last step of the epoch that ran
    last_loss: float      # nan when no step ran
    mean_loss: float | None
    lr: float
    stopped: bool         # --max_steps ended the epoch early


def train_step(model, criterion, optimizer, precision, normalizer, batch, args, device):
    """One optimizer step on a batch; returns (loss, images in the batch)."""
    imgs, vids, _, colors, types, keypts = batch
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    x = normalizer(imgs.to(device, non_blocking=True)).contiguous(memory_format=memory_format)
    vids, colors, types = (t.to(device, non_blocking=True) for t in (vids, colors, types))
    with precision.autocast():
        outputs = model(x, keypts.to(device, non_blocking=True)) if args.keyptaware else model(x)
    loss = criterion(outputs, vids, colors, types)
    optimizer.zero_grad(set_to_none=True)
    precision.backward(loss, optimizer)
    precision.step(optimizer)
    return loss.item(), vids.size(0)


def train_one_epoch(model, criterion, optimizer, precision, normalizer, loader, sampler, meter, epoch, global_step,
                    args, dist, console, metrics) -> EpochResult:
    """One epoch from the sampler's start step (or up to --max_steps); logs the step lines (each also a row of
    metrics.jsonl; on a terminal, a bar) and the epoch's closing lines."""
    model.train()
    batch_time, data_time, losses = AverageMeter(), AverageMeter(), AverageMeter()
    meter.reset_epoch()
    console.bar(sampler.steps_in_epoch, f"Ep {epoch + 1}/{args.max_epoch}", initial=sampler.start_step)
    next_step, last_loss, skipped, stopped = sampler.start_step, float("nan"), 0, False
    for i, batch in enumerate(loader, start=sampler.start_step):
        if batch is None:  # every sample of the batch was a skipped bad image
            skipped += args.train_batch
            continue
        data_time.update(meter.data_time())
        skipped += args.train_batch - batch[1].size(0)  # --skip_bad_images dropped these samples
        last_loss, n = train_step(model, criterion, optimizer, precision, normalizer, batch, args, dist.device)
        global_step += 1
        if not math.isfinite(last_loss):
            raise UserError(f"non-finite loss ({last_loss}) at epoch {epoch + 1} step {i + 1} (global step "
                            f"{global_step}); stopped, the last checkpoint in {args.save_dir} is intact")
        batch_time.update(meter.step(n * dist.world_size))
        losses.update(last_loss, n)
        images_per_sec = args.train_batch * dist.world_size / max(batch_time.val, 1e-9)
        console.update(loss=last_loss, images_per_sec=images_per_sec)
        if (i + 1) % args.print_freq == 0:
            metrics.step(epoch + 1, global_step, lr=optimizer.param_groups[0]["lr"],
                         images_per_sec=images_per_sec, loss=last_loss)
            console.log(f"Epoch: [{epoch + 1}][{i + 1}/{sampler.steps_in_epoch}]\t"
                        f"Time {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
                        f"Data {data_time.val:.4f} ({data_time.avg:.4f})\t"
                        f"Loss {losses.val:.4f} ({losses.avg:.4f})\tFps {images_per_sec:.1f} samples/s\t")
        next_step = i + 1
        if args.max_steps and global_step >= args.max_steps:
            stopped = True
            break
    console.close_bar()
    if args.skip_bad_images:
        skipped = int(distributed.all_reduce_sum(skipped, dist))
        if skipped:
            console.log(f"--skip_bad_images: {skipped} sample(s) of bad images skipped in epoch {epoch + 1} "
                        "(each file named above)")
    if meter.fps is not None:
        console.log("Fps_sum_avg : %.2f" % meter.fps)
    console.log(f"epoch: {epoch + 1} step: {next_step}, loss is {last_loss:.7f}")
    return EpochResult(global_step, next_step, last_loss, losses.avg if losses.count else None,
                       optimizer.param_groups[0]["lr"], stopped)


def evaluate(model, veri, loaders, normalizer, precision, args, dist):
    """The VeRi query/gallery evaluation block; returns (rank1, mAP, metrics) on rank 0, Nones elsewhere."""
    # each rank's BatchNorm statistics saw its own batches: evaluate rank 0's (the checkpoint's) everywhere
    distributed.sync_buffers_from_main(model, dist)
    return run_test(model, veri, loaders, args, dist.device, normalizer, dist, veri.color_map, veri.type_map,
                    amp=precision, keyptaware=bool(args.keyptaware), channels_last=bool(args.channels_last))


def make_evaluator(veri, normalizer, precision, args, dist, log):
    """evaluate(model) on this run's query/gallery loaders, in fp32 unless apex has cast the model itself: the
    printed metrics are those eval.py reproduces from the checkpoint."""
    eval_precision = precision if precision.apex is not None else amp.Amp(False, dist.device)
    log(f"Evaluation precision: {eval_precision.mode}")
    loaders = make_test_loaders(veri, args, dist.device, dist)
    return functools.partial(evaluate, veri=veri, loaders=loaders, normalizer=normalizer, precision=eval_precision,
                             args=args, dist=dist)


def evaluation_due(args, epoch: int, stopped: bool) -> bool:
    """Every --eval-step epochs after --start-eval, after the last epoch and after a --max_steps stop."""
    return args.eval_step > 0 and epoch + 1 > args.start_eval and (
        (epoch + 1) % args.eval_step == 0 or epoch + 1 == args.max_epoch or stopped)


def save_checkpoints(model, optimizer, scheduler, precision, args, progress, epoch, world_size, cfg, veri, rank1,
                     log):
    """checkpoint_ep<N>[_step<k>].pth.tar, and best_model.pth.tar when this epoch's Rank-1 is the best so far."""
    path = os.path.join(args.save_dir, checkpoint_name(epoch, progress))
    save_checkpoint(path, model, optimizer, scheduler, precision, args, progress, epoch, world_size, cfg, veri,
                    rank1)
    log(f"Checkpoint saved to {path}")
    if rank1 is not None and progress.best_epoch == epoch + 1:
        save_checkpoint(os.path.join(args.save_dir, "best_model.pth.tar"), model, optimizer, scheduler, precision,
                        args, progress, epoch, world_size, cfg, veri, rank1)


def open_metrics(args, dist, progress) -> MetricsFile:
    """metrics.jsonl beside the checkpoints (rank 0); a resume keeps the rows up to its checkpoint, no more."""
    resumed = bool(args.resume)
    return MetricsFile(os.path.join(args.save_dir, METRICS_NAME), enabled=dist.is_main,
                       resume_step=progress.global_step if resumed else None,
                       resume_epoch=progress.next_epoch if resumed else None, tensorboard_dir=args.tensorboard)


def log_finish(progress, start_time, train_time, log):
    if progress.best_epoch:
        log(f"==> Best Rank-1 {progress.best_rank1:.2%}, achieved at epoch {progress.best_epoch}")
    elapsed = str(datetime.timedelta(seconds=round(time.time() - start_time)))
    log(f"Finished. Total elapsed time (h:m:s): {elapsed}. Training time (h:m:s): "
        f"{datetime.timedelta(seconds=round(train_time))}.")


def main(argv=None):
    args = get_args_parser().parse_args(argv)  # every numeric flag is range-checked here: one line, exit 1
    with launched(args) as dist:
        run(args, dist)


def run(args, dist):
    start_time, device = time.time(), dist.device
    resolve_args(args, dist)
    notes = []  # said once the log is open
    # --resume: an explicit file, the run folder's newest checkpoint (bare --resume, or after a torchrun restart
    # with --max_restarts), or nothing; a bare --resume with nothing saved yet starts from scratch and says so
    args.resume = checkpoint.resolve_resume(args.resume, latest_checkpoint(args.save_dir) or
                                            os.path.join(args.save_dir, "checkpoint_ep*.pth.tar"), log=notes.append)
    console = open_log(args, dist, notes)
    log = console.log
    checkpoint.seed_everything(args.seed)
    log(f"Initializing dataset {args.dataset}")
    veri = VeRi(args.root, args.heatmapaware, args.segmentaware, verbose=dist.is_main)
    model, cfg = build_model(args, veri, device, log)
    normalizer = Normalizer(cfg["in_channels"]).to(device)
    precision = amp.from_args(args, device)
    evaluate_model = make_evaluator(veri, normalizer, precision, args, dist, log)
    if args.evaluate:
        log("Evaluate only")
        evaluate_model(model)
        return
    optimizer, scheduler = optimizer_and_schedule(model, args, dist, log)
    model, optimizer = precision.initialize(model, optimizer)
    progress = (resume(args.resume, model, optimizer, scheduler, precision, cfg, dist, args, log) if args.resume
                else Progress(next_epoch=args.start_epoch))
    metrics = open_metrics(args, dist, progress)
    ddp_model = distributed.wrap_ddp(model, dist)
    train_loader, sampler = make_train_loader(veri, args, dist)
    criterion = MultiTaskLoss(bool(args.multitask), args.margin, bool(args.label_smooth), bool(args.htri_only),
                              args.lambda_xent, args.lambda_htri, args.lambda_vcolor, args.lambda_vtype)
    meter = FpsMeter(args.train_batch * dist.world_size, warmup=FPS_WARMUP_STEPS)
    log(f"FPS meter: images/s of all processes, the first {FPS_WARMUP_STEPS} steps of each epoch excluded")
    log("==> Start training")
    train_time = 0.0
    for epoch in range(progress.next_epoch, args.max_epoch):
        if args.max_steps and progress.global_step >= args.max_steps:
            break
        sampler.set_epoch(epoch, progress.next_step)
        t0 = time.time()
        result = train_one_epoch(ddp_model, criterion, optimizer, precision, normalizer, train_loader, sampler,
                                 meter, epoch, progress.global_step, args, dist, console, metrics)
        train_time += time.time() - t0
        progress.global_step, progress.next_step = result.global_step, result.next_step
        if not result.stopped or result.next_step >= sampler.steps_in_epoch:  # the epoch is complete
            scheduler.step()
            progress.next_epoch, progress.next_step = epoch + 1, 0
        rank1, results = None, {}
        if evaluation_due(args, epoch, result.stopped):
            log("==> Test")
            rank1, _, results = evaluate_model(model)
            if dist.is_main and rank1 > progress.best_rank1:
                progress.best_rank1, progress.best_epoch = rank1, epoch + 1
        # epoch numbers as in the log (1-based); an epoch cut by --max_steps is written again when a resume ends it
        metrics.epoch(epoch + 1, progress.global_step, lr=result.lr, images_per_sec=meter.fps,
                      losses={"loss": result.mean_loss}, metrics=results)
        if dist.is_main:
            save_checkpoints(model, optimizer, scheduler, precision, args, progress, epoch, dist.world_size, cfg,
                             veri, rank1, log)
        if result.stopped:
            log(f"Stopped after --max_steps {args.max_steps} steps")
            break
    metrics.close()
    log_finish(progress, start_time, train_time, log)


if __name__ == "__main__":
    main_guard(main)()

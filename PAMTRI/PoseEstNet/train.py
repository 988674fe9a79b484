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

import numpy as np
import torch
from poseestnet.cli import (
    add_bool,
    add_cfg_args,
    collate_counting,
    load_file,
    new_parser,
    parse_args,
    requested_device,
    tighten_device_id,
)
from poseestnet.config import cfg_name, load_config
from poseestnet.engine import ShardSampler, validate
from poseestnet.evaluate import heatmap_accuracy
from poseestnet.loss import JointsMSELoss
from poseestnet.pose_hrnet import get_pose_net
from poseestnet.veri import VeRiKeypoints

from common import amp as amp_mod
from common import distributed as D
from common.checkpoint import (
    atomic_save,
    check_recipe,
    clean_stale_temps,
    load_state_dict_checked,
    plain_args,
    resolve_resume,
    rng_state,
    seed_everything,
    set_rng_state,
)
from common.cli import nonneg_int, positive_int
from common.data import loader_kwargs
from common.device import add_device_args, synchronize
from common.errors import UserError, main_guard
from common.fps import FpsMeter
from common.meters import AverageMeter
from common.metrics_file import FILE_NAME as METRICS_NAME
from common.metrics_file import MetricsFile, add_tensorboard_arg
from common.progress import Console

WARMUP_STEPS = 2  # first steps of every epoch left out of FPS (worker start, allocator warm-up)
# what a resume must share with the checkpoint (else refused; --allow_recipe_change to go on, logged)
RECIPE_KEYS = ("lr", "lr_step", "lr_factor", "optimizer", "global_batch", "seed", "image_size", "heatmap_size",
               "sigma", "shuffle")


def get_args(argv=None):
    p = new_parser(__doc__)
    add_cfg_args(p)
    # the MindSpore card's flags
    p.add_argument("--data_dir", default="", help="PoseEstNet data root with images/ and annot/ (DATASET.ROOT)")
    add_bool(p, "--pre_trained", default=None, help="load ImageNet HRNet weights (MODEL.INIT_WEIGHTS)")
    p.add_argument("--pre_ckpt_path", default=None, help="ImageNet HRNet-W32-C weights (MODEL.PRETRAINED)")
    add_bool(p, "--distribute", default=False, help="accepted for the card; distribution follows torchrun")
    # ours
    add_device_args(p)
    tighten_device_id(p)
    amp_mod.add_amp_args(p)
    add_bool(p, "--channels_last", default=False, help="channels_last memory format")
    p.add_argument("--seed", type=nonneg_int, default=1)
    p.add_argument("--workers", type=nonneg_int, default=None, help="data loader workers (WORKERS)")
    p.add_argument("--batch_size", type=positive_int, default=None,
                   help="images per device per step (TRAIN.BATCH_SIZE_PER_GPU)")
    p.add_argument("--epochs", type=positive_int, default=None, help="TRAIN.END_EPOCH")
    p.add_argument("--max_steps", type=nonneg_int, default=0, help="stop after this many optimizer steps (0: no limit)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="checkpoint.pth to continue from; bare --resume: the run folder's checkpoint.pth "
                        "(none yet: start from scratch, logged)")
    add_bool(p, "--allow_recipe_change", default=False,
             help="resume although the recipe (lr, schedule, batch, seed, sizes) differs from the checkpoint's")
    p.add_argument("--val_freq", type=positive_int, default=1,
                   help="validate every N epochs (upstream: 1) and always after the last one")
    p.add_argument("--output_dir", default=None, help="OUTPUT_DIR")
    add_bool(p, "--skip_bad_images", default=False)
    add_bool(p, "--cache_images", default=False, help="decode every image once, before training")
    add_tensorboard_arg(p)
    return parse_args(p, argv)


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


def ceil_div(a, b):
    return -(-a // b)


class EpochBatches(torch.utils.data.Sampler):
    """Batches of (index, epoch): the order is a function of (seed, epoch) only, every rank gets
    the same number of batches, and the first `skip` batches can be skipped on resume."""

    def __init__(self, n, batch_size, shuffle, seed, rank, world):
        self.n, self.bs, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world = rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = epoch, skip

    def _mine(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        per = ceil_div(self.n, self.world)
        order = np.resize(order, per * self.world)  # pad by wrapping, as DistributedSampler
        return order[self.rank::self.world]

    def __len__(self):
        return ceil_div(ceil_div(self.n, self.world), self.bs)

    def __iter__(self):
        mine = self._mine()
        for b in range(self.skip, len(self)):
            yield [(int(i), self.epoch) for i in mine[b * self.bs:(b + 1) * self.bs]]


@main_guard
def main(argv=None):
    # main_guard also reduces a UserError re-raised from a DataLoader worker to its one-line message
    return run(get_args(argv))


def run(args):
    opts = list(args.opts)
    cfg = load_config(args.cfg, opts, args.data_dir or None)
    cfg.defrost()
    if args.pre_trained is not None:
        cfg.MODEL.INIT_WEIGHTS = args.pre_trained
    if args.pre_ckpt_path is not None:
        cfg.MODEL.PRETRAINED = args.pre_ckpt_path
        if args.pre_trained is None:
            cfg.MODEL.INIT_WEIGHTS = True
    if args.workers is not None:
        cfg.WORKERS = args.workers
    if args.epochs is not None:
        cfg.TRAIN.END_EPOCH = args.epochs
    if args.output_dir is not None:
        cfg.OUTPUT_DIR = args.output_dir
    cfg.freeze()
    if cfg.MODEL.INIT_WEIGHTS and cfg.MODEL.PRETRAINED and not os.path.isfile(cfg.MODEL.PRETRAINED):
        raise UserError(f"pretrained HRNet weights not found: {cfg.MODEL.PRETRAINED} (MODEL.PRETRAINED / "
                        "--pre_ckpt_path; --pre_trained False starts from random init)")

    dist = D.init(requested_device(args), args.device_id)
    console = Console(dist.is_main)  # rank 0's log lines; a per-epoch progress bar when stdout is a terminal
    log = console.log
    seed_everything(args.seed)
    device = dist.device
    if dist.world_size > 1:
        batch = args.batch_size or cfg.TRAIN.BATCH_SIZE_PER_GPU
    else:  # upstream runs one DataParallel process over GPUS: that whole batch on one device
        batch = args.batch_size or cfg.TRAIN.BATCH_SIZE_PER_GPU * len(cfg.GPUS)
    global_batch = batch * dist.world_size
    out_dir = os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.DATASET, cfg.MODEL.NAME, cfg_name(args.cfg))
    if dist.is_main:
        os.makedirs(out_dir, exist_ok=True)
    log(f"=> PoseEstNet {cfg.MODEL.NAME}: cfg {args.cfg or 'default'}, device {device}, world {dist.world_size}, "
        f"batch {batch}/device ({global_batch} global), output {out_dir}")

    train_set = VeRiKeypoints(cfg, cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET, True, seed=args.seed,
                              skip_bad_images=args.skip_bad_images, cache_images=args.cache_images)
    valid_set = VeRiKeypoints(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False,
                              skip_bad_images=args.skip_bad_images, cache_images=args.cache_images)
    log(f"=> train {cfg.DATASET.TRAIN_SET}: {len(train_set)} images, "
        f"test {cfg.DATASET.TEST_SET}: {len(valid_set)} images")
    batches = EpochBatches(len(train_set), batch, cfg.TRAIN.SHUFFLE, args.seed, dist.rank, dist.world_size)
    kw = loader_kwargs(cfg.WORKERS, device)
    train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=batches, collate_fn=collate_counting, **kw)
    test_batch = cfg.TEST.BATCH_SIZE_PER_GPU * (1 if dist.world_size > 1 else len(cfg.GPUS))
    valid_loader = torch.utils.data.DataLoader(
        valid_set, batch_size=test_batch, sampler=ShardSampler(len(valid_set), dist.rank, dist.world_size),
        collate_fn=collate_counting, **kw)

    model = get_pose_net(cfg, is_train=True, log=log).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg, model)
    amp = amp_mod.from_args(args, device)
    model, optimizer = amp.initialize(model, optimizer)
    criterion = JointsMSELoss(cfg.LOSS.USE_TARGET_WEIGHT)

    begin_epoch, skip, step, best_perf = cfg.TRAIN.BEGIN_EPOCH, 0, 0, -1.0
    ckpt_path = os.path.join(out_dir, "checkpoint.pth")
    if dist.is_main:
        clean_stale_temps(out_dir)  # temporaries of a checkpoint write that crashed in an earlier run
    # an explicit file; bare --resume, AUTO_RESUME (upstream yaml) or a torchrun restart: this run folder's
    # checkpoint.pth, and when there is none yet the run starts from scratch and says so
    requested = args.resume if args.resume is not None else ("auto" if cfg.AUTO_RESUME else None)
    resume = resolve_resume(requested, ckpt_path, log=log)
    recipe = {"lr": cfg.TRAIN.LR, "lr_step": list(cfg.TRAIN.LR_STEP), "lr_factor": cfg.TRAIN.LR_FACTOR,
              "optimizer": cfg.TRAIN.OPTIMIZER, "global_batch": global_batch, "seed": args.seed,
              "image_size": list(cfg.MODEL.IMAGE_SIZE), "heatmap_size": list(cfg.MODEL.HEATMAP_SIZE),
              "sigma": cfg.MODEL.SIGMA, "shuffle": cfg.TRAIN.SHUFFLE}
    if resume:
        state = load_file(resume, "--resume checkpoint")
        if not isinstance(state, dict) or "optimizer" not in state or "state_dict" not in state:
            raise UserError(f"{resume} is not a PoseEstNet training checkpoint (needs state_dict and optimizer)")
        saved = state.get("recipe") if isinstance(state.get("recipe"), dict) else {}
        check_recipe(saved, recipe, RECIPE_KEYS, resume, allowed=bool(args.allow_recipe_change), log=log)
        load_state_dict_checked(model, state["state_dict"], what=f"checkpoint {resume}")
        optimizer.load_state_dict(state["optimizer"])
        amp.load_state_dict(state.get("amp"))
        set_rng_state(state.get("rng"))
        begin_epoch, skip = state["epoch"], state.get("step_in_epoch", 0)
        step, best_perf = state.get("step", 0), state.get("best_perf", state.get("perf", -1.0))
        log(f"=> resumed from {resume} (epoch {begin_epoch}, step {step})")
    # metrics.jsonl beside checkpoint.pth (rank 0); a resume keeps the rows up to its checkpoint (global step,
    # completed epochs), so a run killed and resumed has each step and epoch once. Epochs 1-based, as "epoch: N".
    metrics = MetricsFile(os.path.join(out_dir, METRICS_NAME), enabled=dist.is_main,
                          resume_step=step if resume else None, resume_epoch=begin_epoch if resume else None,
                          tensorboard_dir=args.tensorboard)
    model = D.wrap_ddp(model, dist)
    core = D.unwrap(model)

    def save(epoch, step_in_epoch, perf, is_best):
        if not dist.is_main:
            return
        atomic_save({"epoch": epoch, "step_in_epoch": step_in_epoch, "step": step, "model": cfg.MODEL.NAME,
                     "state_dict": core.state_dict(), "perf": perf, "best_perf": best_perf,
                     "optimizer": optimizer.state_dict(), "amp": amp.state_dict(), "rng": rng_state(),
                     "args": plain_args(args), "cfg": cfg.dump(), "recipe": recipe}, ckpt_path)
        if is_best:
            atomic_save(core.state_dict(), os.path.join(out_dir, "model_best.pth"))

    fps = FpsMeter(global_batch, warmup=WARMUP_STEPS)
    log(f"=> AMP {amp.mode}; FPS@all: images/s of all ranks, {fps.describe()}")
    stopped = False
    perf = None
    for epoch in range(begin_epoch, cfg.TRAIN.END_EPOCH):
        lr = lr_at(cfg, epoch)
        for g in optimizer.param_groups:
            g["lr"] = lr
        batches.set_epoch(epoch, skip)
        model.train()
        batch_time, data_time, losses, acc = AverageMeter(), AverageMeter(), AverageMeter(), AverageMeter()
        fps.reset_epoch()
        n_batches = len(batches)
        skipped = 0
        console.bar(n_batches, f"Ep {epoch + 1}/{cfg.TRAIN.END_EPOCH}", initial=skip)
        for i, (batch_data, n_skipped) in enumerate(train_loader, start=skip):
            data_time.update(fps.data_time())
            skipped += n_skipped  # --skip_bad_images: samples whose image could not be decoded
            if batch_data is None:
                continue
            images, target, target_weight, _ = batch_data
            images = images.to(device, non_blocking=True)
            if args.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            target, target_weight = target.to(device, non_blocking=True), target_weight.to(device, non_blocking=True)
            with amp.autocast():
                output = model(images)
            loss = criterion(output.float(), target, target_weight)
            if not torch.isfinite(loss):
                raise UserError(f"non-finite loss {loss.item()} at step {step + 1} (epoch {epoch}, batch {i}); "
                                f"last good checkpoint: {ckpt_path}")
            optimizer.zero_grad(set_to_none=True)
            amp.backward(loss, optimizer)
            amp.step(optimizer)
            step += 1
            synchronize(device)
            losses.update(loss.item(), images.size(0))
            _, avg_acc, cnt = heatmap_accuracy(output.detach().float().cpu().numpy(), target.cpu().numpy())
            acc.update(avg_acc, cnt)
            dt = fps.step(images.size(0) * dist.world_size)
            batch_time.update(dt)
            speed = fps.rate(dt, images.size(0) * dist.world_size)
            console.update(loss=losses.val, images_per_sec=speed)
            if i % cfg.PRINT_FREQ == 0 or i == n_batches - 1:
                metrics.step(epoch + 1, step, lr=lr, images_per_sec=speed, loss=losses.val, heatmap_acc=acc.val)
                log(f"Epoch: [{epoch}][{i}/{n_batches}]\tTime {batch_time.val:.3f}s ({batch_time.avg:.3f}s)\t"
                    f"Speed {speed:.1f} samples/s\t"
                    f"Data {data_time.val:.3f}s ({data_time.avg:.3f}s)\tLoss {losses.val:.5f} ({losses.avg:.5f})\t"
                    f"Accuracy {acc.val:.3f} ({acc.avg:.3f})")
            if args.max_steps and step >= args.max_steps:
                stopped = i + 1 < n_batches
                if stopped:
                    skip = i + 1
                break
        console.close_bar()
        if fps.epoch_fps is not None:
            log(f"FPS@all {fps.epoch_fps:.2f} images/s (epoch {epoch}, {dist.world_size} rank(s), {fps.describe()})")
        log(f"epoch: {epoch + 1} step: {n_batches}, loss is {losses.val:.7g}")
        if args.skip_bad_images:
            skipped = int(D.all_reduce_sum(skipped, dist))
            if skipped:
                log(f"--skip_bad_images: {skipped} sample(s) of bad images skipped in epoch {epoch} "
                    "(each file named above)")
        epoch_row = dict(lr=lr, images_per_sec=fps.epoch_fps, losses={"loss": losses.avg, "heatmap_acc": acc.avg})
        if stopped:  # the epoch's row is written again, whole, by the resume that ends it
            metrics.epoch(epoch + 1, step, **epoch_row)
            save(epoch, skip, perf, False)
            log(f"=> stopped after --max_steps {args.max_steps}; checkpoint {ckpt_path} (resume with --resume)")
            break
        skip = 0
        last = epoch + 1 == cfg.TRAIN.END_EPOCH or bool(args.max_steps and step >= args.max_steps)
        if (epoch + 1) % max(1, args.val_freq) and not last:
            metrics.epoch(epoch + 1, step, **epoch_row)
            save(epoch + 1, 0, perf, False)
            continue
        D.sync_buffers_from_main(model, dist)  # rank 0's BatchNorm statistics: the model the checkpoint holds
        perf, name_value = validate(cfg, valid_loader, valid_set, model, criterion, dist, amp, args.channels_last,
                                    log)
        # PCK (%) of the upstream table: PCK = its Mean, PCK_<group> its columns; no table: the heatmap accuracy
        results = {f"PCK_{k}": v for k, v in name_value.items()} if name_value else {}
        if name_value:
            results["PCK"] = perf
        elif perf is not None:
            results["val_heatmap_acc"] = perf
        metrics.epoch(epoch + 1, step, metrics=results, **epoch_row)
        is_best = perf is not None and perf >= best_perf
        if is_best:
            best_perf = perf
        log(f"=> saving checkpoint to {out_dir}")
        save(epoch + 1, 0, perf, is_best)
        if args.max_steps and step >= args.max_steps:
            break
    metrics.close()
    if dist.is_main:
        atomic_save(core.state_dict(), os.path.join(out_dir, "final_state.pth"))
        if fps.fps is not None:
            log(f"FPS@all {fps.fps:.2f} images/s (whole run, {dist.world_size} rank(s), {fps.describe()})")
        log(f"=> saving final model state to {os.path.join(out_dir, 'final_state.pth')}")
    D.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train DeepMAR-ResNet50 on PETA (1p, or 8p under torchrun via test/train_*_8p.sh).

    python train.py --save_dir=/data/peta --batch_size=256 --total_epochs=100 --amp
"""
import argparse
import importlib.util
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from deepmar import peta
from deepmar.checkpoints import RESUME_NAME, check_resume_recipe, read_resume, restore, resume_path, save_checkpoints
from deepmar.evaluate import evaluate
from deepmar.flags import Parser, device_list_type, int_tuple_type, per_rank_batch
from deepmar.loss import WeightedSigmoidCE
from deepmar.lr_schedule import staircase_lrs
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, load_imagenet_backbone
from deepmar.transforms import build_transform, parse_resize, random_hflip
from torch.utils.data import DataLoader, DistributedSampler

from common import amp, checkpoint, distributed
from common.cli import (
    add_bool,
    float_range,
    int_range,
    nonneg_float,
    nonneg_int,
    parse_int_tuple,
    positive_float,
    positive_int,
)
from common.data import loader_kwargs, skip_none_collate
from common.device import add_device_args, synchronize
from common.errors import UserError, main_guard
from common.fps import FpsMeter
from common.metrics_file import FILE_NAME as METRICS_NAME
from common.metrics_file import MetricsFile, add_tensorboard_arg, tensorboard_writer
from common.progress import Console
from common.schedule import format_lr

# Test-only hook (tests/test_distributed.py): "RANK:STEP" makes that rank SIGKILL itself right after
# optimizer step STEP, in the first attempt of a torchrun job only (TORCHELASTIC_RESTART_COUNT 0), to
# show that --max_restarts resumes the job with the same final weights. Unset in every real run.
KILL_HOOK_ENV = "DEEPMAR_TEST_KILL_RANK_AT_STEP"


def get_parser():
    p = Parser(description="DeepMAR-ResNet50 pedestrian attribute training on PETA")
    # model card (Ascend) flags; --save_dir is the card's (and upstream's) name of the data root
    p.add_argument("--save_dir", "--data_path", dest="save_dir", default="/home/dataset/peta/",
                   help="PETA root: PETA.mat + images/ (the pickles are prepared there when missing)")
    p.add_argument("--addr", default="127.0.0.1", help="master address (torchrun's --master_addr in 8p)")
    p.add_argument("--npu", type=nonneg_int, default=None, help="1p device index (same as --device_id)")
    p.add_argument("--workers", type=nonneg_int, default=2, help="data loading workers (8p: divided over ranks)")
    p.add_argument("--total_epochs", type=positive_int, default=150)
    p.add_argument("--batch_size", type=positive_int, default=32,
                   help="GLOBAL batch size: images per optimizer step over all ranks (8p: divided over them)")
    p.add_argument("--new_params_lr", type=positive_float, default=0.001, help="lr of classifier.*")
    p.add_argument("--finetuned_params_lr", type=nonneg_float, default=0.001,
                   help="lr of the backbone (0 freezes it)")
    p.add_argument("--steps_per_log", type=positive_int, default=20)
    add_bool(p, "--multiprocessing_distributed", default=False,
             help="8p training; needs a torchrun launch (test/train_*_8p.sh)")
    p.add_argument("--device_list", type=device_list_type, default="0,1,2,3,4,5,6,7",
                   help="8p: device index of each local rank")
    amp.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    # upstream (dangweili) flags
    add_bool(p, "--set_seed", default=False, help="seed 0 (upstream); --seed N sets another")
    p.add_argument("--dataset", default="peta", choices=["peta"])
    p.add_argument("--split", default="trainval", choices=["trainval", "train"])
    p.add_argument("--test_split", default="test", choices=["test", "val"])
    p.add_argument("--partition_idx", type=int_range(0, peta.NUM_PARTITIONS - 1), default=0)
    p.add_argument("--resize", type=int_tuple_type(1, 4096, sizes=(1, 2)), default="(224,224)",
                   help="(height,width) of the PIL resize")
    add_bool(p, "--mirror", default=True, help="parsed but unused, as upstream: the flip is always on")
    p.add_argument("--num_att", type=positive_int, default=35,
                   help="overridden by the number of selected attributes")
    p.add_argument("--last_conv_stride", type=int, default=2, choices=[1, 2])
    add_bool(p, "--drop_pool5", default=True)
    p.add_argument("--drop_pool5_rate", type=float_range(0, 1), default=0.5)
    p.add_argument("--sgd_weight_decay", type=nonneg_float, default=0.0005)
    p.add_argument("--sgd_momentum", type=float_range(0, 1), default=0.9)
    p.add_argument("--staircase_decay_at_epochs", type=int_tuple_type(1), default="(51,)")
    p.add_argument("--staircase_decay_multiple_factor", type=positive_float, default=0.1)
    add_bool(p, "--weighted_entropy", default=True)
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from PATH, or, bare, from --ckpt_file / <exp_dir>/model/" + RESUME_NAME +
                   " (nothing there yet: starts from scratch and says so)")
    p.add_argument("--ckpt_file", default="", help="the file a bare --resume continues from (upstream)")
    add_bool(p, "--allow_recipe_change", default=False,
             help="resume even when recipe flags (batch size, lrs, schedule, seed, input size...) differ "
                  "from the checkpoint's (logged as a warning)")
    add_bool(p, "--load_model_weight", default=False)
    p.add_argument("--model_weight_file", default="")
    add_bool(p, "--test_only", default=False)
    p.add_argument("--exp_dir", default="", help="default exp/deepmar_resnet50/peta/partition<idx>/run<run>")
    p.add_argument("--run", type=nonneg_int, default=1)
    p.add_argument("--epochs_per_val", type=positive_int, default=10)
    p.add_argument("--epochs_per_save", type=positive_int, default=50)
    # accepted for compatibility with the Ascend 8p script; torchrun provides them
    for flag in ("--world_size", "--rank", "--device_num"):
        p.add_argument(flag, type=nonneg_int, default=None, help=argparse.SUPPRESS)
    for flag in ("--dist_url", "--dist_backend"):
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
    # extras
    add_device_args(p)
    p.add_argument("--seed", type=int_range(0, 2 ** 32 - 1), default=None,
                   help="random seed (default: drawn and logged)")
    p.add_argument("--max_steps", type=positive_int, default=None, help="stop after this many optimizer steps")
    add_bool(p, "--channels_last", default=True, help="NHWC memory format (--no-channels_last: same as False)")
    p.add_argument("--no-channels_last", dest="channels_last", action="store_false", help=argparse.SUPPRESS)
    p.add_argument("--pretrained_path", default="", help="local ImageNet ResNet-50 weights (resnet50-19c8e357.pth)")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS), help="resnet50_tiny: tests/demo only")
    add_bool(p, "--skip_bad_images", default=False, help="skip unreadable images (logged, counted)")
    p.add_argument("--eval_batch_size", type=positive_int, default=None,
                   help="batch of each process during the in-training evaluation (default 32 as upstream)")
    p.add_argument("--fps_warmup_steps", type=nonneg_int, default=None,
                   help="steps excluded from FPS@all each epoch (default 9 in 1p, 2 in 8p, as upstream)")
    add_tensorboard_arg(p)
    return p


def build_model(args, num_att, log):
    model = DeepMAR(num_att, args.arch, args.last_conv_stride, args.drop_pool5, args.drop_pool5_rate)
    if args.pretrained_path:
        n = load_imagenet_backbone(model, args.pretrained_path)
        log(f"loaded ImageNet backbone weights ({n} tensors) from {args.pretrained_path}")
    else:
        log("no --pretrained_path given: the backbone starts from random init")
    if args.load_model_weight and not args.model_weight_file:
        raise UserError("--load_model_weight needs --model_weight_file")
    if args.load_model_weight or args.test_only and args.model_weight_file:
        path = args.model_weight_file
        ckpt = checkpoint.load(path, what="model weight file")
        checkpoint.load_state_dict_checked(model, extract_state_dict(ckpt, f"model weight file {path}"),
                                           what=f"model weight file {path}")
        log(f"loaded model weights from {path}")
    return model


def broadcast_object(obj, dist):
    """Rank 0's object on every rank (identity in 1p): only rank 0 reads the resume file, so
    ranks on other nodes need no copy of the run folder."""
    if not dist.enabled:
        return obj
    holder = [obj if dist.is_main else None]
    torch.distributed.broadcast_object_list(holder, src=0, device=dist.device if dist.device.type != "cpu" else None)
    return holder[0]


def init_job(args):
    """The process group (torchrun's world, or one process) and the batch of each rank; refuses an
    8p run outside torchrun and --tensorboard without its package."""
    _, world, _ = distributed.env_world()
    if args.multiprocessing_distributed and world == 1:
        raise UserError("--multiprocessing_distributed needs a torchrun launch: bash test/train_full_8p.sh "
                        "--data_path=... (or python -m torch.distributed.run --nproc_per_node=8 train.py ...)")
    per_rank = per_rank_batch(args.batch_size, world)
    device_list = [int(x) for x in args.device_list.split(",") if x.strip()] if world > 1 else None
    dist = distributed.init(args.device, args.npu if args.npu is not None else args.device_id, device_list)
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        tensorboard_writer(args.tensorboard)  # the missing package: one line, before anything is read
    return dist, per_rank


def model_dir_of(args):
    """<exp_dir>/model: checkpoints and metrics.jsonl."""
    exp_dir = args.exp_dir or f"exp/deepmar_resnet50/{args.dataset}/partition{args.partition_idx}/run{args.run}"
    return os.path.join(exp_dir, "model")


def load_resume(args, dist, model_dir, log):
    """(resume state, its path) or (None, None): rank 0 decides, reads and checks the recipe;
    every rank gets its state."""
    resume, path = None, None
    if dist.is_main:
        checkpoint.clean_stale_temps(model_dir)
        path = resume_path(args, os.path.join(model_dir, RESUME_NAME), log)
        resume = read_resume(path) if path else None
        if resume is not None and resume["args"] is not None:
            check_resume_recipe(args, resume, path, log)
    return broadcast_object((resume, path), dist)


def choose_seed(args, resume, dist):
    """An exact resume repeats the checkpoint's randomness; else --seed / --set_seed, else one drawn
    seed for the whole job (one shuffle of the data)."""
    requested = args.seed if args.seed is not None else 0 if args.set_seed else None
    if resume is not None and resume["seed"] is not None and not (args.allow_recipe_change and
                                                                   requested is not None):
        return resume["seed"]
    seed = requested if requested is not None else random.SystemRandom().randrange(2 ** 31)
    return broadcast_object(seed, dist)


def build_data(args, dist, seed, per_rank, log):
    """PETA (prepared by rank 0 on first use), the train/test splits and the training loader."""
    if dist.is_main:
        peta.prepare_if_needed(args.save_dir, log)
    distributed.barrier(dist)
    dataset, partition = peta.load_prepared(args.save_dir)
    transform = build_transform(parse_resize(args.resize))
    train_set = peta.PetaDataset(args.save_dir, dataset, partition, args.split, args.partition_idx,
                                 transform, True, args.skip_bad_images)
    test_set = peta.PetaDataset(args.save_dir, dataset, partition, args.test_split, args.partition_idx,
                                transform, False, args.skip_bad_images)
    train_set.check_files()
    test_set.check_files()
    workers = args.workers // dist.world_size if dist.enabled else args.workers
    sampler = DistributedSampler(train_set, dist.world_size, dist.rank, shuffle=True, seed=seed, drop_last=True)
    # the loader's own generator keeps (persistent) worker start-up off the global RNG
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler, drop_last=True,
                        collate_fn=skip_none_collate, generator=torch.Generator().manual_seed(seed),
                        **loader_kwargs(workers, dist.device))
    if len(loader) == 0:
        raise UserError(f"split '{args.split}' has {len(train_set)} images: fewer than one batch of "
                        f"{per_rank} per rank")
    return SimpleNamespace(dataset=dataset, partition=partition, num_att=len(dataset["selected_attribute"]),
                           train_set=train_set, test_set=test_set, loader=loader)


def build_loss(args, data):
    """Upstream's weighted sigmoid cross entropy (weights from the split's positive ratios)."""
    pos_ratio = peta.positive_ratio(data.partition, args.split, args.partition_idx,
                                    data.dataset["selected_attribute"]) if args.weighted_entropy else None
    return WeightedSigmoidCE(pos_ratio, data.num_att)


def build_optimizer(args, model):
    """SGD over (backbone, classifier) with their own lrs; returns it and the base lrs."""
    finetuned, new = model.param_groups()
    base_lrs = [args.finetuned_params_lr, args.new_params_lr]
    optimizer = torch.optim.SGD([{"params": finetuned, "lr": base_lrs[0]}, {"params": new, "lr": base_lrs[1]}],
                                momentum=args.sgd_momentum, weight_decay=args.sgd_weight_decay, foreach=True)
    return optimizer, base_lrs


def nothing_left_to_train(args, start_epoch, global_step, path, log):
    """True when the resumed run is already at --total_epochs / --max_steps: an error, except
    after a torchrun restart (the job died after its last save: its final model is evaluated)."""
    if not (start_epoch > args.total_epochs or args.max_steps is not None and global_step >= args.max_steps):
        return False
    limit = (f"--total_epochs {args.total_epochs}" if start_epoch > args.total_epochs else
             f"--max_steps {args.max_steps} (at step {global_step})")
    if distributed.restart_count() == 0:
        raise UserError(f"{path} has already finished epoch {start_epoch - 1} of {limit}: nothing to train "
                        "(raise it to train longer, or start a new --exp_dir)")
    log(f"the run had reached {limit} before the restart: evaluating its final model")
    return True


def open_metrics(args, dist, model_dir, resume_info):
    """metrics.jsonl beside the checkpoints (rank 0), made when training starts (a run that fails
    before writes none). A resume drops the rows the crashed attempt wrote after its checkpoint;
    a file of another layout (no global step) starts a fresh record."""
    epoch, step = resume_info if resume_info is not None else (None, None)
    return MetricsFile(os.path.join(model_dir, METRICS_NAME), enabled=dist.is_main and not args.test_only,
                       resume_step=step, resume_epoch=epoch, tensorboard_dir=args.tensorboard)


def kill_hook_step(dist):
    """The step after which this rank SIGKILLs itself (KILL_HOOK_ENV, tests only), else None."""
    if not os.environ.get(KILL_HOOK_ENV) or distributed.restart_count() > 0:
        return None
    kill_rank, kill_step = (int(v) for v in os.environ[KILL_HOOK_ENV].split(":"))
    return kill_step if dist.rank == kill_rank else None


def set_staircase_lr(optimizer, epoch, base_lrs, args, log):
    decay_epochs = parse_int_tuple(args.staircase_decay_at_epochs, "--staircase_decay_at_epochs")
    new_lrs = staircase_lrs(epoch, base_lrs, decay_epochs, args.staircase_decay_multiple_factor)
    for i, (g, lr) in enumerate(zip(optimizer.param_groups, new_lrs or [])):
        g["lr"] = lr
        log(f"=====> Param group {i}: lr adjusted to {format_lr(lr)}")


def time_str():
    return time.strftime("%Y-%m-%d_%H:%M:%S")


def train_one_epoch(model, criterion, optimizer, precision, loader, epoch, global_step, seed, args, *,
                    dist, warmup, console, metrics, kill_step=None):
    """One epoch (or up to --max_steps): returns its global step, rank-mean loss, seconds, FPS@all
    (None if all steps were warm-up), skipped images and whether --max_steps was reached."""
    device, per_rank, log = dist.device, loader.batch_size, console.log
    # every epoch's randomness (order, flips, dropout) is a function of (seed, epoch), so a
    # resumed run repeats it exactly
    torch.manual_seed(seed * 1000 + epoch)
    flip_rng = torch.Generator().manual_seed(seed * 1000 + epoch)
    loader.sampler.set_epoch(epoch)
    model.train()
    ep_start = time.time()
    loss_sum, loss_n, skipped = 0.0, 0, 0
    steps_per_epoch = len(loader)
    steps = steps_per_epoch if args.max_steps is None else min(steps_per_epoch, args.max_steps - global_step)
    meter = FpsMeter(args.batch_size, min(warmup, max(steps - 1, 0)))
    console.bar(steps, f"Ep {epoch}/{args.total_epochs}")
    for step, batch in enumerate(loader, 1):
        data_time = meter.data_time()
        if batch is None:
            skipped += per_rank
            continue
        x, y = batch
        skipped += per_rank - len(y)
        x = random_hflip(x, generator=flip_rng).to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with precision.autocast():
            logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss, optimizer)
        precision.step(optimizer)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise UserError(f"non-finite loss {loss_value} at step {global_step + 1} (epoch {epoch}); "
                            "the last checkpoint is intact")
        synchronize(device)
        batch_time = meter.step()
        global_step += 1
        if global_step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook, see KILL_HOOK_ENV
        loss_sum += loss_value
        loss_n += 1
        console.update(loss=loss_value, images_per_sec=meter.rate(batch_time))
        if step % args.steps_per_log == 0 or step == steps_per_epoch:
            log(f"{time_str()}, Step {step}/{steps_per_epoch} in Ep {epoch}, {batch_time:.2f}s, "
                f"datatime:{data_time:.6f}, batchtime:{batch_time:.6f}, FPS:{meter.rate(batch_time):.2f}, "
                f"loss:{loss_value:.4f}")
            metrics.step(epoch, global_step, lr=optimizer.param_groups[1]["lr"],
                         images_per_sec=meter.rate(batch_time), loss=loss_value)
        if args.max_steps is not None and global_step >= args.max_steps:
            break
    console.close_bar()
    loss = distributed.all_reduce_mean(loss_sum / max(loss_n, 1), dist)
    return SimpleNamespace(global_step=global_step, loss=loss, seconds=time.time() - ep_start, fps=meter.epoch_fps,
                           skipped=skipped, stopped=args.max_steps is not None and global_step >= args.max_steps)


def log_epoch(log, epoch, result, skipped_images, dist):
    log(f"Ep{epoch}, {result.seconds:.2f}s, loss {result.loss:.4f}")
    if result.fps is not None:
        if dist.enabled:
            device = dist.device
            log("[npu id:", device.index if device.index is not None else dist.local_rank, "]",
                f" * FPS@all {result.fps:.3f}")
        else:
            log(f" * FPS@all {result.fps:.3f}")
    if skipped_images:
        log(f"skipped bad images so far: {skipped_images} (per rank {dist.rank})")


def evaluate_model(model, test_set, args, precision, dist, log):
    """The in-training evaluation: every rank evaluates with rank 0's BatchNorm statistics, so the
    metric is the saved model's."""
    distributed.sync_buffers_from_main(model, dist)
    return evaluate(distributed.unwrap(model), test_set, args, dist.device, precision, dist, args.test_split, log)


def epoch_metrics(result):
    """The metrics of an evaluated epoch for metrics.jsonl: mA and the instance Acc/Prec/Rec/F1."""
    if result is None:
        return None
    return {"mA": result["mA"], "Acc": result["instance_acc"], "Prec": result["instance_precision"],
            "Rec": result["instance_recall"], "F1": result["instance_F1"]}


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    dist, per_rank = init_job(args)
    console = Console(dist.is_main)  # the rank-0 logger; a progress bar on a terminal only
    log = console.log
    model_dir = model_dir_of(args)
    resume, path = load_resume(args, dist, model_dir, log)
    seed = choose_seed(args, resume, dist)
    checkpoint.seed_everything(seed)

    data = build_data(args, dist, seed, per_rank, log)
    model = build_model(args, data.num_att, log).to(dist.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = build_loss(args, data).to(dist.device)
    optimizer, base_lrs = build_optimizer(args, model)
    precision = amp.from_args(args, dist.device)
    model, optimizer = precision.initialize(model, optimizer)
    start_epoch, global_step, resume_info = 1, 0, None
    if resume is not None:
        start_epoch, global_step = restore(resume, path, model, optimizer, precision, base_lrs, args,
                                           len(data.loader), seed, log)
        resume_info = None if resume["global_step"] is None else (resume["epoch"], resume["global_step"])
    del resume
    ddp = distributed.wrap_ddp(model, dist, broadcast_buffers=False)
    # evaluation runs in fp32 (unless apex has cast the model itself), so the printed metrics
    # are those eval.py reproduces from the checkpoint
    eval_precision = precision if precision.apex is not None else amp.Amp(False, dist.device)
    if args.test_only or nothing_left_to_train(args, start_epoch, global_step, path, log):
        evaluate_model(ddp, data.test_set, args, eval_precision, dist, log)
        distributed.cleanup(dist)
        return

    metrics = open_metrics(args, dist, model_dir, resume_info)
    warmup = args.fps_warmup_steps if args.fps_warmup_steps is not None else (2 if dist.enabled else 9)
    log(f"seed {seed}; device {dist.device}; precision {precision.mode}; channels_last {args.channels_last}; "
        f"{dist.world_size} rank(s) x batch {per_rank}; {len(data.loader)} steps per epoch; "
        f"throughput excludes the first {warmup} steps of each epoch (all but the last in shorter epochs)")
    skipped_images, kill_step = 0, kill_hook_step(dist)
    for epoch in range(start_epoch, args.total_epochs + 1):
        set_staircase_lr(optimizer, epoch, base_lrs, args, log)
        ep = train_one_epoch(ddp, criterion, optimizer, precision, data.loader, epoch, global_step, seed, args,
                             dist=dist, warmup=warmup, console=console, metrics=metrics, kill_step=kill_step)
        global_step, skipped_images = ep.global_step, skipped_images + ep.skipped
        log_epoch(log, epoch, ep, skipped_images, dist)
        last = epoch == args.total_epochs
        # evaluate, record the epoch's row, then save: a kill before the save resumes from the
        # previous epoch, whose resume drops this row, so metrics.jsonl holds each epoch once
        result = evaluate_model(ddp, data.test_set, args, eval_precision, dist, log) \
            if epoch % args.epochs_per_val == 0 or last else None
        metrics.epoch(epoch, global_step, lr=optimizer.param_groups[1]["lr"], images_per_sec=ep.fps,
                      losses={"loss": ep.loss}, metrics=epoch_metrics(result))
        if dist.is_main:
            save_checkpoints(model_dir, args, seed, epoch, global_step, distributed.unwrap(ddp), optimizer,
                             precision, epoch % args.epochs_per_save == 0 or last or ep.stopped, log)
        if ep.stopped:
            log(f"stopped after --max_steps {args.max_steps} optimizer steps")
            break
    metrics.close()
    distributed.barrier(dist)
    distributed.cleanup(dist)


if __name__ == "__main__":
    main()

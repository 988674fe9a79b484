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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from deepmar import peta
from deepmar.flags import Parser, device_list_type, int_tuple_type
from deepmar.loss import WeightedSigmoidCE
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, load_imagenet_backbone
from deepmar.utils import (
    build_transform,
    evaluate,
    format_lr,
    parse_int_tuple,
    parse_resize,
    per_rank_batch,
    random_hflip,
    staircase_lr,
    time_str,
)
from torch.utils.data import DataLoader, DistributedSampler

from common import amp as amp_mod
from common import checkpoint, distributed
from common.cli import (
    add_bool,
    float_range,
    int_range,
    nonneg_float,
    nonneg_int,
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

RESUME_NAME = "checkpoint.path.tar"
# flags a resume must not change silently (the rest, e.g. --total_epochs or --max_steps, may change)
RECIPE_KEYS = ("batch_size", "new_params_lr", "finetuned_params_lr", "sgd_weight_decay", "sgd_momentum",
               "staircase_decay_at_epochs", "staircase_decay_multiple_factor", "weighted_entropy", "split",
               "partition_idx", "resize", "arch", "last_conv_stride", "drop_pool5", "drop_pool5_rate", "seed")
# Test-only hook (tests/test_distributed.py): "RANK:STEP" makes that rank SIGKILL itself right after
# optimizer step STEP, in the first attempt of a torchrun job only (TORCHELASTIC_RESTART_COUNT 0), to
# show that --max_restarts resumes the job with the same final weights. Unset in every real run.
KILL_HOOK_ENV = "DEEPMAR_TEST_KILL_RANK_AT_STEP"


def get_parser():
    p = Parser(description="DeepMAR-ResNet50 pedestrian attribute training on PETA")
    # model card (Ascend) flags
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
    amp_mod.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    # upstream (dangweili) flags
    add_bool(p, "--set_seed", default=False, help="seed 0 (upstream); --seed N sets another")
    p.add_argument("--dataset", default="peta", choices=["peta"])
    p.add_argument("--split", default="trainval", choices=["trainval", "train"])
    p.add_argument("--test_split", default="test", choices=["test", "val"])
    p.add_argument("--partition_idx", type=int_range(0, peta.NUM_PARTITIONS - 1), default=0)
    p.add_argument("--resize", type=int_tuple_type("--resize", 1, 4096, sizes=(1, 2)), default="(224,224)",
                   help="(height,width) of the PIL resize")
    add_bool(p, "--mirror", default=True, help="parsed but unused, as upstream: the flip is always on")
    p.add_argument("--num_att", type=positive_int, default=35,
                   help="overridden by the number of selected attributes")
    p.add_argument("--last_conv_stride", type=int, default=2, choices=[1, 2])
    add_bool(p, "--drop_pool5", default=True)
    p.add_argument("--drop_pool5_rate", type=float_range(0, 1), default=0.5)
    p.add_argument("--sgd_weight_decay", type=nonneg_float, default=0.0005)
    p.add_argument("--sgd_momentum", type=float_range(0, 1), default=0.9)
    p.add_argument("--staircase_decay_at_epochs", type=int_tuple_type("--staircase_decay_at_epochs", 1),
                   default="(51,)")
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


def _int_field(ckpt, key, path, required=True):
    value = ckpt.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"resume checkpoint {path}: '{key}' holds {value!r}, expected an integer >= 0")
    return value


def read_resume(path):
    """A checkpoint to continue from, in any layout DeepMar or its upstreams write:
    this project's checkpoint.path.tar (exact resume), a ckpt_epoch<e>.pth of upstream
    ({'state_dicts': [model, optimizer], 'ep', 'scores'}; ours adds the seed and flags) or the
    Ascend port's checkpoint.path.tar ({'epoch', 'state_dict', 'optimizer', 'amp'})."""
    ckpt = checkpoint.require_dict(checkpoint.load(path, what="resume checkpoint"), path, "resume checkpoint")
    saved_args = ckpt.get("deepmar_args")
    if isinstance(saved_args, argparse.Namespace):  # files of earlier versions of this project
        saved_args = vars(saved_args)
    out = {"args": saved_args if isinstance(saved_args, dict) else None, "amp": None, "global_step": None}
    if "model" in ckpt and "deepmar_args" in ckpt:
        out.update(layout="DeepMar", model=ckpt["model"], optimizer=ckpt.get("optimizer"), amp=ckpt.get("amp"),
                   epoch=_int_field(ckpt, "epoch", path), global_step=_int_field(ckpt, "global_step", path, False))
    elif "state_dicts" in ckpt:
        sds = ckpt["state_dicts"]
        out.update(layout="upstream ckpt_epoch", model=extract_state_dict(ckpt, f"resume checkpoint {path}"),
                   optimizer=sds[1] if len(sds) > 1 else None, epoch=_int_field(ckpt, "ep", path),
                   global_step=_int_field(ckpt, "global_step", path, False))
    elif "state_dict" in ckpt and "epoch" in ckpt:
        out.update(layout="Ascend checkpoint.path.tar", model=ckpt["state_dict"], optimizer=ckpt.get("optimizer"),
                   epoch=_int_field(ckpt, "epoch", path))
    else:
        raise UserError(f"{path} is not a DeepMar checkpoint to resume from: expected this project's "
                        f"{RESUME_NAME}, upstream's ckpt_epoch<e>.pth ('state_dicts', 'ep') or the Ascend "
                        "checkpoint.path.tar ('epoch', 'state_dict', 'optimizer')")
    seed = ckpt.get("seed")
    out["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None
    if out["optimizer"] is not None and not (isinstance(out["optimizer"], dict) and "param_groups" in out["optimizer"]):
        raise UserError(f"resume checkpoint {path}: the optimizer entry holds a {type(out['optimizer']).__name__}, "
                        "expected an optimizer state_dict ('state', 'param_groups')")
    return out


def recipe(flags):
    """The recipe flags of a run, normalised so '(64, 64)' equals '(64,64)'."""
    out = {}
    for k in RECIPE_KEYS:
        if k not in flags:
            continue
        v = flags[k]
        if k in ("resize", "staircase_decay_at_epochs") and v is not None:
            try:
                v = parse_resize(v) if k == "resize" else parse_int_tuple(v, k)
                v = "(" + ",".join(map(str, v)) + ")"
            except UserError:
                v = str(v)
        out[k] = v
    return out


def resume_path(args, default_path, log):
    """--resume semantics (common.checkpoint.resolve_resume) plus upstream's --ckpt_file (the
    file a bare --resume reads). After a torchrun restart the run's own checkpoint wins."""
    requested = args.resume
    if requested == "auto" and args.ckpt_file:
        requested = args.ckpt_file
    if distributed.restart_count() > 0 and os.path.isfile(default_path):
        requested = None
    return checkpoint.resolve_resume(requested, default_path, log)


def broadcast_object(obj, dist):
    """Rank 0's object on every rank (identity in 1p): only rank 0 reads the resume file, so
    ranks on other nodes need no copy of the run folder."""
    if not dist.enabled:
        return obj
    holder = [obj if dist.is_main else None]
    torch.distributed.broadcast_object_list(holder, src=0, device=dist.device if dist.device.type != "cpu" else None)
    return holder[0]


def lr_at(epoch, base_lrs, decay_epochs, factor):
    """The staircase lr in force during 1-based `epoch` (set at the last decay epoch <= epoch)."""
    passed = [e for e in decay_epochs if e <= epoch]
    if not passed:
        return list(base_lrs)
    return staircase_lr(max(passed), base_lrs, decay_epochs, factor)


def epoch_metrics(result):
    """The metrics of an evaluated epoch for metrics.jsonl: mA and the instance Acc/Prec/Rec/F1."""
    if result is None:
        return None
    return {"mA": result["mA"], "Acc": result["instance_acc"], "Prec": result["instance_precision"],
            "Rec": result["instance_recall"], "F1": result["instance_F1"]}


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    rank, world, _ = distributed.env_world()
    if args.multiprocessing_distributed and world == 1:
        raise UserError("--multiprocessing_distributed needs a torchrun launch: bash test/train_full_8p.sh "
                        "--data_path=... (or python -m torch.distributed.run --nproc_per_node=8 train.py ...)")
    per_rank = per_rank_batch(args.batch_size, world)
    resize = parse_resize(args.resize)
    decay_epochs = parse_int_tuple(args.staircase_decay_at_epochs, "--staircase_decay_at_epochs")
    device_list = [int(x) for x in args.device_list.split(",") if x.strip()] if world > 1 else None
    dist = distributed.init(args.device, args.npu if args.npu is not None else args.device_id, device_list)
    console = Console(dist.is_main)  # the rank-0 logger; a progress bar on a terminal only
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        tensorboard_writer(args.tensorboard)  # the missing package: one line, before anything is read
    log = console.log
    exp_dir = args.exp_dir or f"exp/deepmar_resnet50/{args.dataset}/partition{args.partition_idx}/run{args.run}"
    model_dir = os.path.join(exp_dir, "model")
    default_resume = os.path.join(model_dir, RESUME_NAME)

    # resume: rank 0 decides and reads; every rank gets its state
    resume, path = None, None
    if dist.is_main:
        checkpoint.clean_stale_temps(model_dir)
        path = resume_path(args, default_resume, log)
        resume = read_resume(path) if path else None
        if resume is not None and resume["args"] is not None:
            current = vars(args).copy()
            saved = dict(resume["args"])
            if args.seed is None and not args.set_seed:
                current.pop("seed", None)  # no seed asked for: the checkpoint's is kept
            else:
                current["seed"] = args.seed if args.seed is not None else 0
                saved["seed"] = resume["seed"] if resume["seed"] is not None else saved.get("seed")
            checkpoint.check_recipe(recipe(saved), recipe(current), RECIPE_KEYS, path, allowed=args.allow_recipe_change,
                                    log=log)
    resume, path = broadcast_object((resume, path), dist)
    requested_seed = args.seed if args.seed is not None else 0 if args.set_seed else None
    if resume is not None and resume["seed"] is not None and not (args.allow_recipe_change and
                                                                   requested_seed is not None):
        seed = resume["seed"]  # an exact resume repeats the checkpoint's randomness
    else:
        seed = requested_seed if requested_seed is not None else random.SystemRandom().randrange(2 ** 31)
        seed = broadcast_object(seed, dist)  # one seed for the whole job (one shuffle of the data)
    checkpoint.seed_everything(seed)

    # data
    if dist.is_main:
        peta.prepare_if_needed(args.save_dir, log)
    distributed.barrier(dist)
    dataset, partition = peta.load_prepared(args.save_dir)
    num_att = len(dataset["selected_attribute"])
    train_set = peta.PetaDataset(args.save_dir, dataset, partition, args.split, args.partition_idx,
                                 build_transform(resize), True, args.skip_bad_images)
    test_set = peta.PetaDataset(args.save_dir, dataset, partition, args.test_split, args.partition_idx,
                                build_transform(resize), False, args.skip_bad_images)
    train_set.check_files()
    test_set.check_files()
    device = dist.device
    workers = args.workers // dist.world_size if dist.enabled else args.workers
    sampler = DistributedSampler(train_set, dist.world_size, dist.rank, shuffle=True, seed=seed, drop_last=True)
    # the loader's own generator keeps (persistent) worker start-up off the global RNG
    loader = DataLoader(train_set, batch_size=per_rank, sampler=sampler, drop_last=True,
                        collate_fn=skip_none_collate, generator=torch.Generator().manual_seed(seed),
                        **loader_kwargs(workers, device))
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise UserError(f"split '{args.split}' has {len(train_set)} images: fewer than one batch of "
                        f"{per_rank} per rank")

    # model, loss, optimizer
    model = build_model(args, num_att, log).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    pos_ratio = peta.positive_ratio(partition, args.split, args.partition_idx,
                                    dataset["selected_attribute"]) if args.weighted_entropy else None
    criterion = WeightedSigmoidCE(pos_ratio, num_att).to(device)
    finetuned, new = model.param_groups()
    base_lrs = [args.finetuned_params_lr, args.new_params_lr]
    optimizer = torch.optim.SGD([{"params": finetuned, "lr": base_lrs[0]}, {"params": new, "lr": base_lrs[1]}],
                                momentum=args.sgd_momentum, weight_decay=args.sgd_weight_decay, foreach=True)
    amp = amp_mod.from_args(args, device)
    model, optimizer = amp.initialize(model, optimizer)
    start_epoch, global_step = 1, 0
    if resume is not None:
        what = f"resume checkpoint {path}"
        checkpoint.load_state_dict_checked(model, resume["model"], what=what)
        if resume["optimizer"] is not None:
            try:
                optimizer.load_state_dict(resume["optimizer"])
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise UserError(f"{what}: its optimizer state does not fit this model's SGD: "
                                f"{exc}".splitlines()[0]) from None
        else:
            log(f"{what} holds no optimizer state: momentum starts from zero")
        amp.load_state_dict(resume["amp"] if isinstance(resume["amp"], dict) else None)
        start_epoch = resume["epoch"] + 1
        global_step = resume["global_step"] if resume["global_step"] is not None else resume["epoch"] * steps_per_epoch
        # the staircase lr in force at this epoch (files of any layout, every rank alike)
        for g, lr in zip(optimizer.param_groups, lr_at(resume["epoch"], base_lrs, decay_epochs,
                                                       args.staircase_decay_multiple_factor)):
            g["lr"] = lr
        exact = "" if resume["layout"] == "DeepMar" or resume["seed"] is not None else \
            f" ({resume['layout']} layout: weights and optimizer restored; the data order follows seed {seed})"
        log(f"resumed from {path} at the end of epoch {resume['epoch']}{exact}")
    resume_info = None if resume is None or resume["global_step"] is None else (resume["epoch"], resume["global_step"])
    del resume
    ddp = distributed.wrap_ddp(model, dist, broadcast_buffers=False)
    # evaluation runs in fp32 (unless apex has cast the model itself), so the printed metrics
    # are those eval.py reproduces from the checkpoint
    eval_amp = amp if amp.apex is not None else amp_mod.Amp(False, device)

    def run_evaluation():
        # every rank evaluates with rank 0's BatchNorm statistics: the metric is the saved model's
        distributed.sync_buffers_from_main(ddp, dist)
        return evaluate(distributed.unwrap(ddp), test_set, args, device, eval_amp, dist, args.test_split, log)

    if args.test_only:
        run_evaluation()
        distributed.cleanup(dist)
        return
    done = start_epoch > args.total_epochs or args.max_steps is not None and global_step >= args.max_steps
    if done:
        limit = (f"--total_epochs {args.total_epochs}" if start_epoch > args.total_epochs else
                 f"--max_steps {args.max_steps} (at step {global_step})")
        if distributed.restart_count() == 0:
            raise UserError(f"{path} has already finished epoch {start_epoch - 1} of {limit}: nothing to train "
                            "(raise it to train longer, or start a new --exp_dir)")
        log(f"the run had reached {limit} before the restart: evaluating its final model")
        run_evaluation()
        distributed.cleanup(dist)
        return

    # metrics.jsonl beside the checkpoints (rank 0), made when training starts (a run that fails
    # before writes none). A resume drops the rows the crashed attempt wrote
    # after its checkpoint; a file of another layout (no global step) starts a fresh record.
    known_step = resume_info is not None
    metrics = MetricsFile(os.path.join(model_dir, METRICS_NAME), enabled=dist.is_main and not args.test_only,
                          resume_step=resume_info[1] if known_step else None,
                          resume_epoch=resume_info[0] if known_step else None, tensorboard_dir=args.tensorboard)
    kill_rank, kill_step = None, None
    if os.environ.get(KILL_HOOK_ENV) and distributed.restart_count() == 0:
        kill_rank, kill_step = (int(v) for v in os.environ[KILL_HOOK_ENV].split(":"))
    warmup = args.fps_warmup_steps if args.fps_warmup_steps is not None else (2 if dist.enabled else 9)
    meter = FpsMeter(args.batch_size, warmup)
    log(f"seed {seed}; device {device}; precision {amp.mode}; channels_last {args.channels_last}; "
        f"{dist.world_size} rank(s) x batch {per_rank}; {steps_per_epoch} steps per epoch; "
        f"throughput excludes the first {warmup} steps of each epoch (all but the last in shorter epochs)")
    skipped_images = 0
    for epoch in range(start_epoch, args.total_epochs + 1):
        new_lrs = staircase_lr(epoch, base_lrs, decay_epochs, args.staircase_decay_multiple_factor)
        if new_lrs is not None:
            for i, (g, lr) in enumerate(zip(optimizer.param_groups, new_lrs)):
                g["lr"] = lr
                log(f"=====> Param group {i}: lr adjusted to {format_lr(lr)}")
        # every epoch's randomness (order, flips, dropout) is a function of (seed, epoch), so a
        # resumed run repeats it exactly
        torch.manual_seed(seed * 1000 + epoch)
        flip_rng = torch.Generator().manual_seed(seed * 1000 + epoch)
        sampler.set_epoch(epoch)
        ddp.train()
        ep_start = time.time()
        loss_sum, loss_n = 0.0, 0
        meter.reset_epoch()
        steps_this_epoch = steps_per_epoch if args.max_steps is None else min(steps_per_epoch,
                                                                               args.max_steps - global_step)
        meter.warmup = min(warmup, max(steps_this_epoch - 1, 0))
        console.bar(steps_this_epoch, f"Ep {epoch}/{args.total_epochs}")
        for step, batch in enumerate(loader, 1):
            data_time = meter.data_time()
            if batch is None:
                skipped_images += per_rank
                continue
            x, y = batch
            skipped_images += per_rank - len(y)
            x = random_hflip(x, generator=flip_rng).to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp.autocast():
                logits = ddp(x)
            loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            amp.backward(loss, optimizer)
            amp.step(optimizer)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise UserError(f"non-finite loss {loss_value} at step {global_step + 1} (epoch {epoch}); "
                                "the last checkpoint is intact")
            synchronize(device)
            batch_time = meter.step()
            global_step += 1
            if global_step == kill_step and dist.rank == kill_rank:
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
        stopped = args.max_steps is not None and global_step >= args.max_steps
        epoch_loss = distributed.all_reduce_mean(loss_sum / max(loss_n, 1), dist)
        log(f"Ep{epoch}, {time.time() - ep_start:.2f}s, loss {epoch_loss:.4f}")
        if meter.epoch_fps is not None:
            if dist.enabled:
                log("[npu id:", device.index if device.index is not None else dist.local_rank, "]",
                    f" * FPS@all {meter.epoch_fps:.3f}")
            else:
                log(f" * FPS@all {meter.epoch_fps:.3f}")
        if skipped_images:
            log(f"skipped bad images so far: {skipped_images} (per rank {dist.rank})")
        last = epoch == args.total_epochs
        # evaluate, record the epoch's row, then save: a kill before the save resumes from the
        # previous epoch, whose resume drops this row, so metrics.jsonl holds each epoch once
        result = run_evaluation() if epoch % args.epochs_per_val == 0 or last else None
        metrics.epoch(epoch, global_step, lr=optimizer.param_groups[1]["lr"], images_per_sec=meter.epoch_fps,
                      losses={"loss": epoch_loss}, metrics=epoch_metrics(result))
        if dist.is_main:
            flags = checkpoint.plain_args(args)
            state = {"deepmar_args": flags, "seed": seed, "epoch": epoch, "global_step": global_step,
                     "model": distributed.unwrap(ddp).state_dict(), "optimizer": optimizer.state_dict(),
                     "amp": amp.state_dict(), "rng": checkpoint.rng_state()}
            checkpoint.atomic_save(state, default_resume)
            if epoch % args.epochs_per_save == 0 or last or stopped:
                # upstream's layout; the extra keys (flags, seed, step) let eval.py/export.py rebuild the
                # same input size and arch and --resume continue exactly (upstream readers ignore them)
                upstream = {"state_dicts": [state["model"], state["optimizer"]], "ep": epoch, "scores": 0,
                            "deepmar_args": flags, "seed": seed, "global_step": global_step}
                ckpt_path = os.path.join(model_dir, f"ckpt_epoch{epoch}.pth")
                checkpoint.atomic_save(upstream, ckpt_path)
                log(f"saved {ckpt_path}")
        if stopped:
            log(f"stopped after --max_steps {args.max_steps} optimizer steps")
            break
    metrics.close()
    distributed.barrier(dist)
    distributed.cleanup(dist)


if __name__ == "__main__":
    main()

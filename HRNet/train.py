"""Train HRNet-C on ImageNet class folders (HRNet/HRNet-Image-Classification tools/train.py as
the Ascend HRNet_ID1780 port runs it).

    python train.py /data/imagenet --cfg experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml
    torchrun --nproc_per_node=8 train.py /data/imagenet --cfg w18 --bs=256 --lr=0.1 --amp

Recipe (from the config): SGD, momentum 0.9, Nesterov, weight decay 1e-4 on every parameter;
lr = --lr (default TRAIN.LR) x number of devices, x0.1 at the TRAIN.LR_STEP epochs; 100 epochs.

main() reads top to bottom: flags and config, the resume decision (before anything is written),
log, data, model, resume, then the epoch loop (hrnet_cls/function.py train_one_epoch, validate);
checkpoints go through hrnet_cls/checkpoints.py Checkpointer, whose test-only hook
(HRNET_TEST_KILL_AT_STEP, the --max_restarts test) is described at maybe_kill_for_test there.
"""
import os
import pprint
import sys
from argparse import ArgumentTypeError
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch
from hrnet_cls.checkpoints import (
    Checkpointer,
    Position,
    checkpoint_info,
    load_weights,
    restore,
    resume_point,
)
from hrnet_cls.cls_hrnet import get_cls_net, model_cost
from hrnet_cls.config import cfg_name, load_config, output_dir
from hrnet_cls.function import train_one_epoch, validate
from hrnet_cls.loaders import build_datasets, make_train_loader, make_val_loader
from hrnet_cls.optim import SCHEDULES, get_optimizer, lr_at_epoch, set_lr
from hrnet_cls.run_log import RunLog

from common import amp, distributed
from common.checkpoint import atomic_save, clean_stale_temps, seed_everything
from common.cli import ArgumentParser, nonneg_int, positive_float, positive_int
from common.device import add_device_args
from common.errors import UserError, main_guard
from common.metrics_file import FILE_NAME as METRICS_FILE
from common.metrics_file import MetricsFile, add_tensorboard_arg, require_tensorboard

PORT_STOP_STEP = 201  # the port's --stop_step: an epoch ends after step i=200


def stop_step_type(text):
    """--stop_step: true/false (the port's switch: 201 steps per epoch) or a number of steps >= 1."""
    v = str(text).strip().lower()
    if v in ("", "0", "false", "no", "off"):
        return None
    if v in ("true", "1", "yes", "on"):
        return PORT_STOP_STEP
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise ArgumentTypeError(f"expected true/false or a number of steps >= 1, got {text!r}")
    return n


def get_args_parser(add_help=True):
    p = ArgumentParser(description="HRNet-C ImageNet classification training", add_help=add_help)
    # the model card's (Ascend port's) arguments
    p.add_argument("data_path", nargs="?", default=None, help="dataset root holding train/ and val/ class folders")
    p.add_argument("--data_path", dest="data_path_opt", metavar="DATA_PATH", default=None,
                   help="the same as the positional data_path")
    p.add_argument("--cfg", required=True, help="experiment yaml (.yaml/.yml only), or a short name: w18_small_v1, "
                   "w18_small_v2, w18, w30, w32, w40, w44, w48, w64 (upstream) or demo_tiny (tests/demo only)")
    p.add_argument("--addr", default="", help="master address when --dn>1 is launched without torchrun (port style)")
    p.add_argument("--nproc", type=positive_int, default=None,
                   help="CPU cores to spread over loader workers: nproc // dn each (the port's meaning)")
    p.add_argument("--lr", type=positive_float, default=None, help="base lr per device; effective lr = lr x dn "
                   "(default TRAIN.LR of the config)")
    p.add_argument("--workers", type=nonneg_int, default=None,
                   help="loader workers per process (overrides --nproc and WORKERS)")
    p.add_argument("--train_epochs", type=positive_int, default=None, help="epochs (default TRAIN.END_EPOCH)")
    p.add_argument("--bs", type=positive_int, default=None,
                   help="batch size per device (default TRAIN.BATCH_SIZE_PER_GPU x len(GPUS), upstream's 128)")
    p.add_argument("--stop_step", nargs="?", const=PORT_STOP_STEP, default=None, type=stop_step_type,
                   help="performance runs: end every epoch after 201 steps (true) or after N steps")
    p.add_argument("--dn", type=positive_int, default=None,
                   help="number of devices (default: WORLD_SIZE of torchrun, else 1; the port's meaning)")
    add_device_args(p)
    add_tensorboard_arg(p)
    # upstream's path arguments
    p.add_argument("--modelDir", default="", help="OUTPUT_DIR: checkpoints and logs go to <modelDir>/imagenet/<cfg>/")
    p.add_argument("--logDir", default="", help="LOG_DIR")
    p.add_argument("--dataDir", default="", help="DATA_DIR: without data_path, read <dataDir>/imagenet/images")
    p.add_argument("--testModel", default="", help="TEST.MODEL_FILE (used by eval.py)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="checkpoint.pth.tar to continue exactly; bare --resume (or 'auto'): the run folder's own, "
                   "or from scratch when it has none yet")
    p.add_argument("--fresh", action="store_true",
                   help="start from scratch even when TRAIN.RESUME is true and the run folder has a checkpoint")
    p.add_argument("--allow_recipe_change", action="store_true",
                   help="resume even when --bs/--lr/--seed/--dn/--lr_schedule differ from the checkpoint's "
                   "(logged as a warning); without it such a resume is refused")
    p.add_argument("--pretrained", default="", help="initial weights (a state_dict, e.g. hrnetv2_w18_imagenet_"
                   "pretrained.pth); port style '--pretrained=1 --resume=FILE' also works")
    # extras
    p.add_argument("--max_steps", type=positive_int, default=None, help="stop after N optimizer steps in all")
    p.add_argument("--lr_schedule", choices=SCHEDULES, default="upstream",
                   help="upstream: x0.1 at 0-based epochs 30/60/90 (torch 0.4.1); port: one epoch earlier")
    p.add_argument("--print_freq", type=positive_int, default=None,
                   help="step line every N steps (default PRINT_FREQ)")
    p.add_argument("--save_freq", type=nonneg_int, default=0,
                   help="also checkpoint every N steps (0: once per epoch)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="model init, data order and augmentation")
    p.add_argument("--channels_last", action="store_true", help="NHWC memory format (faster convs)")
    p.add_argument("--skip_bad_images", action="store_true", help="skip unreadable images instead of stopping")
    p.add_argument("--cache_images", choices=("auto", "on", "off"), default="auto",
                   help="decode once and keep in memory (auto: splits up to 20k images / 1 GiB)")
    amp.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    p.add_argument("--fp32", action="store_true", help="no AMP even with --amp (the port's ALLOW_FP32)")
    p.add_argument("--hf32", action="store_true", help="no AMP, TF32 matmuls/convs (the port's ALLOW_HF32)")
    return p


def setup_world(args):
    """Device count: torchrun's WORLD_SIZE, or the port's own launch (one process per device
    with --dn/--device_id/--addr, rank = device_id, port 29988)."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    dn = env_world
    if args.dn is not None:
        dn = args.dn
        if "WORLD_SIZE" in os.environ and dn != env_world:
            raise UserError(f"--dn {dn} but torchrun started {env_world} processes")
    if dn > 1 and "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK=str(args.device_id), LOCAL_RANK=str(args.device_id), WORLD_SIZE=str(dn),
                          MASTER_ADDR=args.addr or "127.0.0.1", MASTER_PORT=os.environ.get("MASTER_PORT", "29988"))
    return dn


def configure_precision(args):
    """The port trains under apex O2 unless ALLOW_FP32 or ALLOW_HF32 is exported (--fp32/--hf32 here)."""
    fp32 = args.fp32 or os.environ.get("ALLOW_FP32")
    hf32 = args.hf32 or os.environ.get("ALLOW_HF32")
    if fp32 and hf32:
        raise UserError("fp32 and hf32 are both requested (--fp32/--hf32, ALLOW_FP32/ALLOW_HF32); choose one")
    if fp32 or hf32:
        args.amp = False
    if hf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def pretrained_weights(args) -> str:
    """--pretrained FILE; the port's '--pretrained=1 --resume=FILE' (a switch, and the file in --resume)."""
    weights = args.pretrained
    if weights and not os.path.isfile(weights):
        if args.resume and args.resume != "auto":
            weights, args.resume = args.resume, None
        else:
            raise UserError(f"--pretrained {weights}: file not found")
    return weights


def start_log(args, cfg, cfg_path, final_dir, dist, early):
    """Upstream's logger on rank 0, opened with the flags, the config and the resume decision."""
    log = RunLog(final_dir if dist.is_main else None, cfg_name(cfg_path), "train", dist.is_main)
    if dist.is_main:
        clean_stale_temps(final_dir)  # temps of a crashed write go at start, not only at the first save
    log(pprint.pformat(vars(args)))
    log(pprint.pformat(cfg))
    for line in early:
        log(line)
    torch.backends.cudnn.benchmark = cfg.CUDNN.BENCHMARK
    torch.backends.cudnn.deterministic = cfg.CUDNN.DETERMINISTIC
    torch.backends.cudnn.enabled = cfg.CUDNN.ENABLED
    return log


def build_loaders(args, cfg, bs, dn, dist, log):
    """(train loader, its resumable sampler, val loader); loader workers per process: --workers,
    else --nproc // devices (the port's), else the config's WORKERS."""
    workers = args.workers if args.workers is not None else (args.nproc // dn if args.nproc else cfg.WORKERS)
    train_set, val_set = build_datasets(args.data_path or args.data_path_opt or cfg.DATASET.ROOT,
                                        cfg.MODEL.IMAGE_SIZE[0], cfg.MODEL.NUM_CLASSES, skip_bad=args.skip_bad_images,
                                        cache=args.cache_images, log=log)
    train_loader, sampler = make_train_loader(train_set, bs, workers, dist.device, dist, args.seed)
    return train_loader, sampler, make_val_loader(val_set, bs, workers, dist.device, dist)


def build_model(args, cfg, weights, base_lr, dist, log):
    """(the model wrapped for DDP, its optimizer, the AMP handler): random init or --pretrained
    weights, moved to the device; the optimizer at the whole job's lr."""
    model = get_cls_net(cfg)
    params, macs = model_cost(cfg)
    log(f"Total Parameters: {params:,}")
    log(f"Total Multiply Adds (For Convolution and Linear Layers only): {macs / 1024 ** 3:,} GFLOPs")
    if weights:
        load_weights(model, weights, "pretrained weights")
        log(f"=> loaded pretrained weights {weights}")
    else:
        log("=> no pretrained weights: random init (kaiming normal, fan_out)")
    model.to(dist.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = get_optimizer(cfg, model, base_lr, dist.device)
    handler = amp.from_args(args, dist.device)
    model, optimizer = handler.initialize(model, optimizer)
    return distributed.wrap_ddp(model, dist), optimizer, handler


def steps_left_in_epoch(args, at: Position):
    """Steps this epoch may still take under --max_steps / --stop_step (None: the whole epoch)."""
    left = None if args.max_steps is None else args.max_steps - at.global_step
    if args.stop_step is not None:
        left = min(args.stop_step - at.step_in_epoch, left if left is not None else args.stop_step)
    return left


def validate_synced(raw_model, val_loader, criterion, precision, dist, args, log):
    # every rank evaluates with rank 0's BatchNorm statistics, the ones the checkpoint holds
    distributed.sync_buffers_from_main(raw_model, dist)
    return validate(raw_model, val_loader, criterion, precision, device=dist.device, dist=dist, log=log,
                    channels_last=args.channels_last)


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    require_tensorboard(args.tensorboard)
    cfg, cfg_path = load_config(args.cfg, args.modelDir, args.logDir, args.dataDir, args.testModel)
    dn = setup_world(args)
    configure_precision(args)
    bs = args.bs or cfg.TRAIN.BATCH_SIZE_PER_GPU * len(cfg.GPUS)
    lr = args.lr if args.lr is not None else cfg.TRAIN.LR
    recipe = {"bs": bs, "lr": lr, "seed": args.seed, "dn": dn, "lr_schedule": args.lr_schedule}
    weights = pretrained_weights(args)
    final_dir = output_dir(cfg, cfg_path)
    early = []  # the resume decision is taken before anything is written; its lines go to the log once it exists
    resume, ckpt = resume_point(args, cfg, final_dir, recipe, early.append)

    dist = distributed.init(args.device, args.device_id)
    device = dist.device
    log = start_log(args, cfg, cfg_path, final_dir, dist, early)
    seed_everything(args.seed)
    train_loader, sampler, val_loader = build_loaders(args, cfg, bs, dn, dist, log)
    ddp_model, optimizer, precision = build_model(args, cfg, weights, lr * dn, dist, log)
    raw_model = distributed.unwrap(ddp_model)
    criterion = torch.nn.CrossEntropyLoss().to(device)
    at = restore(ckpt, resume, raw_model, optimizer, precision, log) if resume else Position(cfg.TRAIN.BEGIN_EPOCH)
    log(f"=> {dn} device(s) x batch {bs} = {dn * bs} images/step, lr {lr * dn:g} ({precision.mode}, "
        f"{'channels_last' if args.channels_last else 'NCHW'}, {train_loader.num_workers} loader workers on {device}); "
        f"Fps_Avg = {dn * bs} / mean step time without each epoch's first 5 and last 5 steps")
    # metrics.jsonl beside the checkpoints; a resume drops the rows the crashed attempt wrote
    # after its checkpoint (epochs count from 0 here, as the log's)
    metrics = MetricsFile(final_dir / METRICS_FILE, enabled=dist.is_main, tensorboard_dir=args.tensorboard,
                          resume_step=at.global_step if resume else None, resume_epoch=at.epoch - 1 if resume else None)
    checkpointer = Checkpointer(final_dir, raw_model, optimizer, precision, dist=dist, save_freq=args.save_freq,
                                info=checkpoint_info(args, cfg, cfg_path, recipe, dn), position=at)

    end_epoch = args.train_epochs if args.train_epochs is not None else cfg.TRAIN.END_EPOCH
    if at.epoch >= end_epoch:
        log(f"=> the checkpoint already finished epoch {at.epoch} of {end_epoch}: nothing left to train")
    trained = False
    for epoch in range(at.epoch, end_epoch):
        set_lr(optimizer, lr_at_epoch(epoch, lr * dn, cfg.TRAIN.LR_STEP, cfg.TRAIN.LR_FACTOR, args.lr_schedule))
        sampler.set_epoch(epoch, at.step_in_epoch * bs)
        steps_left = steps_left_in_epoch(args, at)
        if steps_left is not None and steps_left <= 0:
            log("=> the checkpoint already used up --max_steps / --stop_step: nothing left to train")
            break
        log(f"=> epoch {epoch}: lr {optimizer.param_groups[0]['lr']:.6g}")
        log.console.bar(at.step_in_epoch + len(train_loader), f"Epoch {epoch}/{end_epoch}", initial=at.step_in_epoch)
        res = train_one_epoch(ddp_model, train_loader, criterion, optimizer, precision, epoch, device=device,
                              global_batch=dn * bs, print_freq=args.print_freq or cfg.PRINT_FREQ, log=log,
                              start_step=at.step_in_epoch, global_step=at.global_step, steps_left=steps_left,
                              channels_last=args.channels_last, console=log.console, metrics=metrics,
                              checkpointer=checkpointer)
        trained = True
        log.console.close_bar()
        val = validate_synced(raw_model, val_loader, criterion, precision, dist, args, log)
        at = end_of_epoch(args, epoch, at, res, val, dn * bs, optimizer, metrics, checkpointer, log)
        if args.max_steps is not None and at.global_step >= args.max_steps:
            log(f"=> stopped after {at.global_step} steps (--max_steps)")
            break

    if not trained:  # report the accuracy of the weights saved below, as every run does
        validate_synced(raw_model, val_loader, criterion, precision, dist, args, log)
    save_final_state(raw_model, final_dir, dist, log)
    metrics.close()
    distributed.cleanup(dist)
    return 0


def save_final_state(model, final_dir, dist, log):
    """final_state.pth.tar: the bare state_dict of the last weights (upstream's file)."""
    if dist.is_main:
        final_file = final_dir / "final_state.pth.tar"
        log(f"saving final model state to {final_file}")
        atomic_save(model.state_dict(), final_file)


def end_of_epoch(args, epoch, at: Position, res, val: dict, global_batch, optimizer, metrics, checkpointer, log):
    """The epoch's metrics row and checkpoint; returns where the next epoch starts. A --max_steps
    stop inside an epoch resumes there; --stop_step ends the epoch (port)."""
    avg = res.averages(global_batch)
    metrics.epoch(epoch, res.global_step, lr=optimizer.param_groups[0]["lr"], images_per_sec=avg and avg[1],
                  losses={"loss": avg[2]} if avg else None,
                  metrics={"top1": val["top1"], "top5": val["top5"], "val_loss": val["loss"]})
    is_best = checkpointer.validated(val["top1"])
    out_of_steps = args.max_steps is not None and res.global_step >= args.max_steps
    epoch, step = (epoch, at.step_in_epoch + res.steps) if out_of_steps and res.stopped else (epoch + 1, 0)
    log(f"=> saving checkpoint to {checkpointer.folder}")
    checkpointer.save(epoch, step, res.global_step, is_best)
    return Position(epoch, step, res.global_step, checkpointer.perf, checkpointer.best_perf)


if __name__ == "__main__":
    sys.exit(main())

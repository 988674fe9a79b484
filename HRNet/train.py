"""Train HRNet-C on ImageNet class folders (HRNet/HRNet-Image-Classification tools/train.py as
the Ascend HRNet_ID1780 port runs it).

    python train.py /data/imagenet --cfg experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml
    torchrun --nproc_per_node=8 train.py /data/imagenet --cfg w18 --bs=256 --lr=0.1 --amp

Recipe (from the config): SGD, momentum 0.9, Nesterov, weight decay 1e-4 on every parameter;
lr = --lr (default TRAIN.LR) x number of devices, x0.1 at the TRAIN.LR_STEP epochs; 100 epochs.

Test-only hook (the --max_restarts test): with HRNET_TEST_KILL_AT_STEP=N in the environment, the
last rank SIGKILLs itself after its N-th optimizer step, in the first attempt of a torchrun job
only (TORCHELASTIC_RESTART_COUNT 0), so that torchrun restarts the job and it resumes by itself.
"""
import os
import pprint
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from argparse import ArgumentTypeError

import torch
from hrnet_cls.cls_hrnet import get_cls_net, model_cost
from hrnet_cls.config import cfg_name, load_config, output_dir
from hrnet_cls.function import train_one_epoch, validate
from hrnet_cls.optim import SCHEDULES, get_optimizer, lr_at_epoch, set_lr
from hrnet_cls.utils import (
    RunLog,
    build_datasets,
    extract_state_dict,
    load_weights,
    loss_scale_type,
    make_train_loader,
    make_val_loader,
    retype,
    save_checkpoint,
)

from common import amp as amp_mod
from common import distributed
from common.checkpoint import (
    atomic_save,
    check_recipe,
    clean_stale_temps,
    load,
    load_state_dict_checked,
    plain_args,
    resolve_resume,
    rng_state,
    seed_everything,
    set_rng_state,
)
from common.cli import ArgumentParser, nonneg_int, positive_float, positive_int
from common.device import add_device_args
from common.errors import UserError, main_guard
from common.metrics_file import FILE_NAME as METRICS_FILE
from common.metrics_file import MetricsFile, add_tensorboard_arg, require_tensorboard

PORT_STOP_STEP = 201  # the port's --stop_step: an epoch ends after step i=200
KILL_HOOK = "HRNET_TEST_KILL_AT_STEP"  # tests only: see the module docstring
# flags whose change makes a resumed run a different training run than the one it continues
RECIPE_KEYS = ("bs", "lr", "seed", "dn", "lr_schedule")


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
    retype(p, "device_id", nonneg_int)
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
    amp_mod.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    retype(p, "loss_scale", loss_scale_type)
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


def recipe_of(ckpt: dict) -> dict:
    """The recipe a checkpoint was trained with: its `recipe` entry, or for files of earlier
    versions what their flags (`args`, a dict or Namespace) and `seed`/`world_size` say."""
    if isinstance(ckpt.get("recipe"), dict):
        return ckpt["recipe"]
    saved = ckpt.get("args")
    saved = vars(saved) if hasattr(saved, "__dict__") else (saved if isinstance(saved, dict) else {})
    out = {k: saved[k] for k in ("bs", "lr", "lr_schedule") if saved.get(k) is not None}
    if "seed" in ckpt:
        out["seed"] = ckpt["seed"]
    if "world_size" in ckpt:
        out["dn"] = ckpt["world_size"]
    return out


def find_resume(args, cfg, default_path, log):
    """The checkpoint this run continues (path, loaded dict) or (None, None).

    --resume FILE / bare --resume as common.checkpoint.resolve_resume; without --resume the
    run folder's checkpoint when TRAIN.RESUME is true (upstream) unless --fresh. After a
    torchrun restart (--max_restarts) the job continues from its own last checkpoint (the
    checkpoint names its job); when it has none yet it starts as its first attempt did."""
    restarts = distributed.restart_count()
    job = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if restarts > 0 and default_path.is_file():
        ckpt = load(default_path)
        if isinstance(ckpt, dict) and job and ckpt.get("run_id") == job:
            log(f"restart {restarts} of the job: resuming from {default_path}, the job's last checkpoint")
            return str(default_path), ckpt
    requested = args.resume
    if requested is None and cfg.TRAIN.RESUME and not args.fresh:
        requested = "auto"  # upstream's automatic resume: the lines resolve_resume logs say so

        def log(line, say=log):
            say(line.replace("--resume:", "TRAIN.RESUME (the run folder's checkpoint; --fresh starts over):", 1))
    if requested is None:
        if restarts > 0:
            log(f"restart {restarts} of the job: no checkpoint of this job yet: starting from scratch, as its "
                "first attempt did")
        return None, None
    path = resolve_resume(requested, default_path, log)
    return (path, load(path)) if path else (None, None)


def maybe_kill_for_test(global_step: int, dist) -> None:
    """The test-only hook of the module docstring (inert unless HRNET_TEST_KILL_AT_STEP is set)."""
    at = os.environ.get(KILL_HOOK)
    if at and distributed.restart_count() == 0 and dist.rank == dist.world_size - 1 and global_step == int(at):
        print(f"[test hook] rank {dist.rank} kills itself after step {global_step} ({KILL_HOOK})", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    require_tensorboard(args.tensorboard)
    cfg, cfg_path = load_config(args.cfg, args.modelDir, args.logDir, args.dataDir, args.testModel)
    data_path = args.data_path or args.data_path_opt or cfg.DATASET.ROOT
    stop_cap = args.stop_step
    dn = setup_world(args)
    configure_precision(args)
    bs = args.bs or cfg.TRAIN.BATCH_SIZE_PER_GPU * len(cfg.GPUS)
    lr = args.lr if args.lr is not None else cfg.TRAIN.LR
    base_lr = lr * dn
    recipe = {"bs": bs, "lr": lr, "seed": args.seed, "dn": dn, "lr_schedule": args.lr_schedule}
    weights = args.pretrained
    if weights and not os.path.isfile(weights):
        if args.resume and args.resume != "auto":  # port: --pretrained is a switch, --resume names the weights
            weights, args.resume = args.resume, None
        else:
            raise UserError(f"--pretrained {weights}: file not found")
    final_dir = output_dir(cfg, cfg_path)
    # which checkpoint this run continues, and whether it may: decided before anything is written
    early = []
    resume, ckpt = find_resume(args, cfg, final_dir / "checkpoint.pth.tar", early.append)
    if resume:
        if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "epoch" not in ckpt:
            raise UserError(f"--resume {resume}: not a training checkpoint (checkpoint.pth.tar); "
                            "use --pretrained for bare weights")
        try:
            check_recipe(recipe_of(ckpt), recipe, RECIPE_KEYS, resume, allowed=args.allow_recipe_change,
                         log=early.append)
        except UserError as exc:
            raise UserError(f"{exc}; or --fresh to start this run folder over") from None

    dist = distributed.init(args.device, args.device_id)
    device = dist.device
    name = cfg_name(cfg_path)
    log = RunLog(final_dir if dist.is_main else None, name, "train", dist.is_main)
    if dist.is_main:
        clean_stale_temps(final_dir)  # temps of a crashed write go at start, not only at the first save
    log(pprint.pformat(vars(args)))
    log(pprint.pformat(cfg))
    for line in early:
        log(line)

    torch.backends.cudnn.benchmark = cfg.CUDNN.BENCHMARK
    torch.backends.cudnn.deterministic = cfg.CUDNN.DETERMINISTIC
    torch.backends.cudnn.enabled = cfg.CUDNN.ENABLED
    seed_everything(args.seed)

    workers = args.workers if args.workers is not None else (args.nproc // dn if args.nproc else cfg.WORKERS)
    print_freq = args.print_freq or cfg.PRINT_FREQ
    end_epoch = args.train_epochs if args.train_epochs is not None else cfg.TRAIN.END_EPOCH

    train_set, val_set = build_datasets(data_path, cfg.MODEL.IMAGE_SIZE[0], cfg.MODEL.NUM_CLASSES,
                                        skip_bad=args.skip_bad_images, cache=args.cache_images, log=log)

    model = get_cls_net(cfg)
    params, macs = model_cost(cfg)
    log(f"Total Parameters: {params:,}")
    log(f"Total Multiply Adds (For Convolution and Linear Layers only): {macs / 1024 ** 3:,} GFLOPs")
    if weights:
        load_weights(model, weights, "pretrained weights")
        log(f"=> loaded pretrained weights {weights}")
    else:
        log("=> no pretrained weights: random init (kaiming normal, fan_out)")
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = torch.nn.CrossEntropyLoss().to(device)
    optimizer = get_optimizer(cfg, model, base_lr, device)
    amp = amp_mod.from_args(args, device)
    model, optimizer = amp.initialize(model, optimizer)
    ddp_model = distributed.wrap_ddp(model, dist)
    raw_model = distributed.unwrap(ddp_model)

    start_epoch, start_step, global_step, best_perf, perf = cfg.TRAIN.BEGIN_EPOCH, 0, 0, 0.0, 0.0
    if resume:
        load_state_dict_checked(raw_model, extract_state_dict(ckpt, resume), what=f"checkpoint {resume}")
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"checkpoint {resume}: its optimizer state does not fit this model/optimizer "
                            f"({str(exc).splitlines()[0]})") from None
        amp.load_state_dict(ckpt.get("amp"))
        set_rng_state(ckpt.get("rng"))
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt.get("step_in_epoch", 0))
        global_step, perf = int(ckpt.get("global_step", 0)), float(ckpt.get("perf", 0.0))
        best_perf = float(ckpt.get("best_perf", perf))
        log(f"=> loaded checkpoint (epoch {start_epoch}) from {resume}"
            + (f", continuing at step {start_step} of that epoch" if start_step else ""))

    train_loader, sampler = make_train_loader(train_set, bs, workers, device, dist, args.seed)
    val_loader = make_val_loader(val_set, bs, workers, device, dist)
    log(f"=> {dn} device(s) x batch {bs} = {dn * bs} images/step, lr {base_lr:g} ({amp.mode}, "
        f"{'channels_last' if args.channels_last else 'NCHW'}, {train_loader.num_workers} loader workers on {device}); "
        f"Fps_Avg = {dn * bs} / mean step time without each epoch's first 5 and last 5 steps")

    # metrics.jsonl beside the checkpoints; a resume drops the rows the crashed attempt wrote
    # after its checkpoint (epochs count from 0 here, as the log's)
    metrics = MetricsFile(final_dir / METRICS_FILE, enabled=dist.is_main,
                          resume_step=global_step if resume else None,
                          resume_epoch=start_epoch - 1 if resume else None, tensorboard_dir=args.tensorboard)

    def state(epoch, step_in_epoch):
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                "model": cfg.MODEL.NAME, "state_dict": raw_model.state_dict(), "perf": perf,
                "best_perf": best_perf, "optimizer": optimizer.state_dict(), "amp": amp.state_dict(),
                "rng": rng_state(), "args": plain_args(args), "recipe": recipe, "cfg": str(cfg_path),
                "world_size": dn, "seed": args.seed, "run_id": os.environ.get("TORCHELASTIC_RUN_ID", "")}

    if start_epoch >= end_epoch:
        log(f"=> the checkpoint already finished epoch {start_epoch} of {end_epoch}: nothing left to train")
    trained = False
    for epoch in range(start_epoch, end_epoch):
        set_lr(optimizer, lr_at_epoch(epoch, base_lr, cfg.TRAIN.LR_STEP, cfg.TRAIN.LR_FACTOR, args.lr_schedule))
        sampler.set_epoch(epoch, start_step * bs)
        steps_left = None if args.max_steps is None else args.max_steps - global_step
        if stop_cap is not None:
            steps_left = min(stop_cap - start_step, steps_left if steps_left is not None else stop_cap)
        if steps_left is not None and steps_left <= 0:
            log("=> the checkpoint already used up --max_steps / --stop_step: nothing left to train")
            break

        def on_step(step_in_epoch, loss, images_per_sec, logged, epoch=epoch):
            nonlocal global_step
            global_step += 1
            log.console.update(loss=loss, images_per_sec=images_per_sec)
            if logged:
                metrics.step(epoch, global_step, lr=optimizer.param_groups[0]["lr"], images_per_sec=images_per_sec,
                             loss=loss)
            if args.save_freq and global_step % args.save_freq == 0 and dist.is_main:
                save_checkpoint(state(epoch, step_in_epoch), False, final_dir)
            maybe_kill_for_test(global_step, dist)

        log(f"=> epoch {epoch}: lr {optimizer.param_groups[0]['lr']:.6g}")
        log.console.bar(start_step + len(train_loader), f"Epoch {epoch}/{end_epoch}", initial=start_step)
        res = train_one_epoch(ddp_model, train_loader, criterion, optimizer, amp, epoch, device=device,
                              global_batch=dn * bs, print_freq=print_freq, log=log, start_step=start_step,
                              steps_left=steps_left, channels_last=args.channels_last, on_step=on_step)
        done_in_epoch = start_step + res.steps
        start_step = 0
        trained = True
        # every rank evaluates with rank 0's BatchNorm statistics, the ones the checkpoint holds
        distributed.sync_buffers_from_main(raw_model, dist)
        log.console.close_bar()
        val = validate(raw_model, val_loader, criterion, amp, device=device, dist=dist, log=log,
                       channels_last=args.channels_last)
        perf = val["top1"]
        avg = res.averages(dn * bs)
        metrics.epoch(epoch, global_step, lr=optimizer.param_groups[0]["lr"], images_per_sec=avg and avg[1],
                      losses={"loss": avg[2]} if avg else None,
                      metrics={"top1": val["top1"], "top5": val["top5"], "val_loss": val["loss"]})
        is_best = perf > best_perf
        best_perf = max(perf, best_perf)
        out_of_steps = args.max_steps is not None and global_step >= args.max_steps
        # a --max_steps stop inside an epoch resumes there; --stop_step ends the epoch (port)
        position = (epoch, done_in_epoch) if out_of_steps and res.stopped else (epoch + 1, 0)
        if dist.is_main:
            log(f"=> saving checkpoint to {final_dir}")
            save_checkpoint(state(*position), is_best, final_dir)
        if out_of_steps:
            log(f"=> stopped after {global_step} steps (--max_steps)")
            break

    if not trained:  # report the accuracy of the weights saved below, as every run does
        distributed.sync_buffers_from_main(raw_model, dist)
        validate(raw_model, val_loader, criterion, amp, device=device, dist=dist, log=log,
                 channels_last=args.channels_last)
    if dist.is_main:
        final_file = final_dir / "final_state.pth.tar"
        log(f"saving final model state to {final_file}")
        atomic_save(raw_model.state_dict(), final_file)
    metrics.close()
    distributed.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train HRNet-C on ImageNet class folders (HRNet/HRNet-Image-Classification tools/train.py as
the Ascend HRNet_ID1780 port runs it).

    python train.py /data/imagenet --cfg experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml
    torchrun --nproc_per_node=8 train.py /data/imagenet --cfg w18 --bs=256 --lr=0.1 --amp

Recipe (from the config): SGD, momentum 0.9, Nesterov, weight decay 1e-4 on every parameter;
lr = --lr (default TRAIN.LR) x number of devices, x0.1 at the TRAIN.LR_STEP epochs; 100 epochs.
"""
import argparse
import os
import pprint
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

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
    make_train_loader,
    make_val_loader,
    save_checkpoint,
)

from common import amp as amp_mod
from common import distributed
from common.checkpoint import atomic_save, load, load_state_dict_checked, rng_state, seed_everything, set_rng_state
from common.device import add_device_args
from common.errors import UserError, main_guard

PORT_STOP_STEP = 201  # the port's --stop_step: an epoch ends after step i=200


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description="HRNet-C ImageNet classification training", add_help=add_help)
    # the model card's (Ascend port's) arguments
    p.add_argument("data_path", nargs="?", default=None, help="dataset root holding train/ and val/ class folders")
    p.add_argument("--data_path", dest="data_path_opt", metavar="DATA_PATH", default=None,
                   help="the same as the positional data_path")
    p.add_argument("--cfg", required=True, help="experiment yaml, or a short name: w18_small_v1, w18_small_v2, "
                   "w18, w30, w32, w40, w44, w48, w64 (upstream) or demo_tiny (tests/demo only)")
    p.add_argument("--addr", default="", help="master address when --dn>1 is launched without torchrun (port style)")
    p.add_argument("--nproc", type=int, default=None, help="CPU cores to spread over loader workers: nproc // dn each")
    p.add_argument("--lr", type=float, default=None, help="base lr per device; effective lr = lr x dn "
                   "(default TRAIN.LR of the config)")
    p.add_argument("--workers", type=int, default=None,
                   help="loader workers per process (overrides --nproc and WORKERS)")
    p.add_argument("--train_epochs", type=int, default=None, help="epochs (default TRAIN.END_EPOCH)")
    p.add_argument("--bs", type=int, default=None,
                   help="batch size per device (default TRAIN.BATCH_SIZE_PER_GPU x len(GPUS), upstream's 128)")
    p.add_argument("--stop_step", nargs="?", const="true", default=None,
                   help="performance runs: end every epoch after 201 steps (true) or after N steps")
    p.add_argument("--dn", default=None, help="number of devices (default: WORLD_SIZE of torchrun, else 1)")
    add_device_args(p)
    # upstream's path arguments
    p.add_argument("--modelDir", default="", help="OUTPUT_DIR: checkpoints and logs go to <modelDir>/imagenet/<cfg>/")
    p.add_argument("--logDir", default="", help="LOG_DIR")
    p.add_argument("--dataDir", default="", help="DATA_DIR: without data_path, read <dataDir>/imagenet/images")
    p.add_argument("--testModel", default="", help="TEST.MODEL_FILE (used by eval.py)")
    p.add_argument("--resume", default="", help="checkpoint.pth.tar to continue exactly; 'auto' = the run folder's")
    p.add_argument("--fresh", action="store_true",
                   help="start from scratch even when TRAIN.RESUME is true and the run folder has a checkpoint")
    p.add_argument("--pretrained", default="", help="initial weights (a state_dict, e.g. hrnetv2_w18_imagenet_"
                   "pretrained.pth); port style '--pretrained=1 --resume=FILE' also works")
    # extras
    p.add_argument("--max_steps", type=int, default=None, help="stop after N optimizer steps in all")
    p.add_argument("--lr_schedule", choices=SCHEDULES, default="upstream",
                   help="upstream: x0.1 at 0-based epochs 30/60/90 (torch 0.4.1); port: one epoch earlier")
    p.add_argument("--print_freq", type=int, default=None, help="step line every N steps (default PRINT_FREQ)")
    p.add_argument("--save_freq", type=int, default=0, help="also checkpoint every N steps (0: once per epoch)")
    p.add_argument("--seed", type=int, default=0, help="model init, data order and augmentation")
    p.add_argument("--channels_last", action="store_true", help="NHWC memory format (faster convs)")
    p.add_argument("--skip_bad_images", action="store_true", help="skip unreadable images instead of stopping")
    p.add_argument("--cache_images", choices=("auto", "on", "off"), default="auto",
                   help="decode once and keep in memory (auto: splits up to 20k images / 1 GiB)")
    amp_mod.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    p.add_argument("--fp32", action="store_true", help="no AMP even with --amp (the port's ALLOW_FP32)")
    p.add_argument("--hf32", action="store_true", help="no AMP, TF32 matmuls/convs (the port's ALLOW_HF32)")
    return p


def stop_step_cap(value):
    if value is None or str(value).lower() in ("", "0", "false", "no", "off"):
        return None
    if str(value).lower() in ("true", "1", "yes", "on"):
        return PORT_STOP_STEP
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--stop_step {value}: expected true/false or a number of steps") from None


def setup_world(args):
    """Device count: torchrun's WORLD_SIZE, or the port's own launch (one process per device
    with --dn/--device_id/--addr, rank = device_id, port 29988)."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    dn = env_world
    if args.dn not in (None, ""):
        try:
            dn = int(args.dn)
        except ValueError:
            raise UserError(f"--dn {args.dn}: expected the number of devices") from None
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


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    cfg, cfg_path = load_config(args.cfg, args.modelDir, args.logDir, args.dataDir, args.testModel)
    data_path = args.data_path or args.data_path_opt or cfg.DATASET.ROOT
    stop_cap = stop_step_cap(args.stop_step)
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max_steps {args.max_steps}: expected a positive number of steps")
    dn = setup_world(args)
    configure_precision(args)
    dist = distributed.init(args.device, args.device_id)
    device = dist.device
    name = cfg_name(cfg_path)
    final_dir = output_dir(cfg, cfg_path)
    log = RunLog(final_dir if dist.is_main else None, name, "train", dist.is_main)
    log(pprint.pformat(vars(args)))
    log(pprint.pformat(cfg))

    torch.backends.cudnn.benchmark = cfg.CUDNN.BENCHMARK
    torch.backends.cudnn.deterministic = cfg.CUDNN.DETERMINISTIC
    torch.backends.cudnn.enabled = cfg.CUDNN.ENABLED
    seed_everything(args.seed)

    bs = args.bs or cfg.TRAIN.BATCH_SIZE_PER_GPU * len(cfg.GPUS)
    base_lr = (args.lr if args.lr is not None else cfg.TRAIN.LR) * dn
    workers = args.workers if args.workers is not None else (args.nproc // dn if args.nproc else cfg.WORKERS)
    print_freq = args.print_freq or cfg.PRINT_FREQ
    end_epoch = args.train_epochs if args.train_epochs is not None else cfg.TRAIN.END_EPOCH

    train_set, val_set = build_datasets(data_path, cfg.MODEL.IMAGE_SIZE[0], cfg.MODEL.NUM_CLASSES,
                                        skip_bad=args.skip_bad_images, cache=args.cache_images, log=log)
    resume = args.resume
    weights = args.pretrained
    if weights and not os.path.isfile(weights):
        if resume and resume != "auto":  # port: --pretrained is a switch, --resume names the weights
            weights, resume = resume, ""
        else:
            raise UserError(f"--pretrained {weights}: file not found")

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
    auto_note = ""
    if resume == "auto" or (not resume and cfg.TRAIN.RESUME and not args.fresh):
        auto = final_dir / "checkpoint.pth.tar"
        resume = str(auto) if auto.is_file() else ""
        auto_note = " (TRAIN.RESUME: the run folder's checkpoint; --fresh starts over)"
    if resume:
        ckpt = load(resume)
        if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "epoch" not in ckpt:
            raise UserError(f"--resume {resume}: not a training checkpoint (checkpoint.pth.tar); "
                            "use --pretrained for bare weights")
        load_state_dict_checked(raw_model, extract_state_dict(ckpt, resume), what=f"checkpoint {resume}")
        optimizer.load_state_dict(ckpt["optimizer"])
        amp.load_state_dict(ckpt.get("amp"))
        set_rng_state(ckpt.get("rng"))
        start_epoch, start_step = ckpt["epoch"], ckpt.get("step_in_epoch", 0)
        global_step, perf = ckpt.get("global_step", 0), ckpt.get("perf", 0.0)
        best_perf = ckpt.get("best_perf", perf)
        log(f"=> loaded checkpoint (epoch {ckpt['epoch']}) from {resume}"
            + (f", continuing at step {start_step} of that epoch" if start_step else "") + auto_note)
        if ckpt.get("world_size", dn) != dn:
            log(f"[Warning] checkpoint was written by {ckpt['world_size']} devices, this run has {dn}: "
                "the data order of the rest of the run differs from an uninterrupted one")

    train_loader, sampler = make_train_loader(train_set, bs, workers, device, dist, args.seed)
    val_loader = make_val_loader(val_set, bs, workers, device, dist)
    log(f"=> {dn} device(s) x batch {bs} = {dn * bs} images/step, lr {base_lr:g} ({amp.mode}, "
        f"{'channels_last' if args.channels_last else 'NCHW'}, {train_loader.num_workers} loader workers on {device}); "
        f"Fps_Avg = {dn * bs} / mean step time without each epoch's first 5 and last 5 steps")

    def state(epoch, step_in_epoch):
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                "model": cfg.MODEL.NAME, "state_dict": raw_model.state_dict(), "perf": perf,
                "best_perf": best_perf, "optimizer": optimizer.state_dict(), "amp": amp.state_dict(),
                "rng": rng_state(), "args": vars(args), "cfg": str(cfg_path), "world_size": dn, "seed": args.seed}

    if start_epoch >= end_epoch:
        log(f"=> the checkpoint already finished epoch {start_epoch} of {end_epoch}: nothing left to train")
    for epoch in range(start_epoch, end_epoch):
        set_lr(optimizer, lr_at_epoch(epoch, base_lr, cfg.TRAIN.LR_STEP, cfg.TRAIN.LR_FACTOR, args.lr_schedule))
        sampler.set_epoch(epoch, start_step * bs)
        steps_left = None if args.max_steps is None else args.max_steps - global_step
        if stop_cap is not None:
            steps_left = min(stop_cap - start_step, steps_left if steps_left is not None else stop_cap)
        if steps_left is not None and steps_left <= 0:
            log("=> the checkpoint already used up --max_steps / --stop_step: nothing left to train")
            break

        def on_step(step_in_epoch, epoch=epoch):
            nonlocal global_step
            global_step += 1
            if args.save_freq and global_step % args.save_freq == 0 and dist.is_main:
                save_checkpoint(state(epoch, step_in_epoch), False, final_dir)

        log(f"=> epoch {epoch}: lr {optimizer.param_groups[0]['lr']:.6g}")
        res = train_one_epoch(ddp_model, train_loader, criterion, optimizer, amp, epoch, device=device,
                              global_batch=dn * bs, print_freq=print_freq, log=log, start_step=start_step,
                              steps_left=steps_left, channels_last=args.channels_last, on_step=on_step)
        done_in_epoch = start_step + res.steps
        start_step = 0
        perf = validate(raw_model, val_loader, criterion, amp, device=device, dist=dist, log=log,
                        channels_last=args.channels_last)["top1"]
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

    if dist.is_main:
        final_file = final_dir / "final_state.pth.tar"
        log(f"saving final model state to {final_file}")
        atomic_save(raw_model.state_dict(), final_file)
    distributed.cleanup(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())

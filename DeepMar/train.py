"""Train DeepMAR-ResNet50 on PETA (1p, or 8p under torchrun via test/train_*_8p.sh).

    python train.py --save_dir=/data/peta --batch_size=256 --total_epochs=100 --amp
"""
import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch  # noqa: E402
from deepmar import peta  # noqa: E402
from deepmar.loss import WeightedSigmoidCE  # noqa: E402
from deepmar.model import ARCHS, DeepMAR, extract_state_dict, load_imagenet_backbone  # noqa: E402
from deepmar.utils import build_transform, evaluate, format_lr, parse_int_tuple, random_hflip, staircase_lr, time_str  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from common import amp as amp_mod  # noqa: E402
from common import checkpoint, distributed  # noqa: E402
from common.cli import str2bool  # noqa: E402
from common.data import loader_kwargs, skip_none_collate  # noqa: E402
from common.device import add_device_args, synchronize  # noqa: E402
from common.errors import UserError, main_guard  # noqa: E402
from common.fps import FpsMeter  # noqa: E402

RESUME_NAME = "checkpoint.path.tar"


def get_parser():
    p = argparse.ArgumentParser(description="DeepMAR-ResNet50 pedestrian attribute training on PETA")
    b = dict(type=str2bool, nargs="?", const=True)
    # model card (Ascend) flags
    p.add_argument("--save_dir", "--data_path", dest="save_dir", default="/home/dataset/peta/",
                   help="PETA root: PETA.mat + images/ (the pickles are prepared there when missing)")
    p.add_argument("--addr", default="127.0.0.1", help="master address (torchrun's --master_addr in 8p)")
    p.add_argument("--npu", type=int, default=None, help="1p device index (same as --device_id)")
    p.add_argument("--workers", type=int, default=2, help="data loading workers (8p: divided over ranks)")
    p.add_argument("--total_epochs", type=int, default=150)
    p.add_argument("--batch_size", type=int, default=32, help="global batch size (8p: divided over ranks)")
    p.add_argument("--new_params_lr", type=float, default=0.001, help="lr of classifier.*")
    p.add_argument("--finetuned_params_lr", type=float, default=0.001, help="lr of the backbone")
    p.add_argument("--steps_per_log", type=int, default=20)
    p.add_argument("--multiprocessing_distributed", action="store_true",
                   help="8p training; needs a torchrun launch (test/train_*_8p.sh)")
    p.add_argument("--device_list", default="0,1,2,3,4,5,6,7", help="8p: device index of each local rank")
    amp_mod.add_amp_args(p, default_opt_level="O2", default_loss_scale="dynamic")
    # upstream (dangweili) flags
    p.add_argument("--set_seed", **b, default=False, help="seed 0 (upstream); --seed N sets another")
    p.add_argument("--dataset", default="peta", choices=["peta"])
    p.add_argument("--split", default="trainval", choices=["trainval", "train"])
    p.add_argument("--test_split", default="test", choices=["test", "val"])
    p.add_argument("--partition_idx", type=int, default=0)
    p.add_argument("--resize", default="(224,224)", help="(height,width) of the PIL resize")
    p.add_argument("--mirror", **b, default=True, help="parsed but unused, as upstream: the flip is always on")
    p.add_argument("--num_att", type=int, default=35, help="overridden by the number of selected attributes")
    p.add_argument("--last_conv_stride", type=int, default=2, choices=[1, 2])
    p.add_argument("--drop_pool5", **b, default=True)
    p.add_argument("--drop_pool5_rate", type=float, default=0.5)
    p.add_argument("--sgd_weight_decay", type=float, default=0.0005)
    p.add_argument("--sgd_momentum", type=float, default=0.9)
    p.add_argument("--staircase_decay_at_epochs", default="(51,)")
    p.add_argument("--staircase_decay_multiple_factor", type=float, default=0.1)
    p.add_argument("--weighted_entropy", **b, default=True)
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from PATH (or, bare, from --ckpt_file / <exp_dir>/model/" + RESUME_NAME + ")")
    p.add_argument("--ckpt_file", default="")
    p.add_argument("--load_model_weight", **b, default=False)
    p.add_argument("--model_weight_file", default="")
    p.add_argument("--test_only", **b, default=False)
    p.add_argument("--exp_dir", default="", help="default exp/deepmar_resnet50/peta/partition<idx>/run<run>")
    p.add_argument("--run", type=int, default=1)
    p.add_argument("--epochs_per_val", type=int, default=10)
    p.add_argument("--epochs_per_save", type=int, default=50)
    # accepted for compatibility with the Ascend 8p script; torchrun provides them
    for flag in ("--world_size", "--rank", "--device_num"):
        p.add_argument(flag, type=int, default=None, help=argparse.SUPPRESS)
    for flag in ("--dist_url", "--dist_backend"):
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
    # extras
    add_device_args(p)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: drawn and logged)")
    p.add_argument("--max_steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--channels_last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--pretrained_path", default="", help="local ImageNet ResNet-50 weights (resnet50-19c8e357.pth)")
    p.add_argument("--arch", default="resnet50", choices=list(ARCHS), help="resnet50_tiny: tests/demo only")
    p.add_argument("--skip_bad_images", action="store_true", help="skip unreadable images (logged, counted)")
    p.add_argument("--eval_batch_size", type=int, default=None, help="default 32 as upstream")
    p.add_argument("--fps_warmup_steps", type=int, default=None,
                   help="steps excluded from FPS@all each epoch (default 9 in 1p, 2 in 8p, as upstream)")
    return p


def build_model(args, num_att, log):
    model = DeepMAR(num_att, args.arch, args.last_conv_stride, args.drop_pool5, args.drop_pool5_rate)
    if args.pretrained_path:
        n = load_imagenet_backbone(model, args.pretrained_path)
        log(f"loaded ImageNet backbone weights ({n} tensors) from {args.pretrained_path}")
    else:
        log("no --pretrained_path given: the backbone starts from random init")
    if args.load_model_weight or args.test_only and args.model_weight_file:
        if not args.model_weight_file:
            raise UserError("--load_model_weight needs --model_weight_file")
        checkpoint.load_state_dict_checked(model, extract_state_dict(checkpoint.load(args.model_weight_file)),
                                           what=f"model weight file {args.model_weight_file}")
        log(f"loaded model weights from {args.model_weight_file}")
    return model


@main_guard
def main(argv=None):
    args = get_parser().parse_args(argv)
    rank, world, _ = distributed.env_world()
    if args.multiprocessing_distributed and world == 1:
        raise UserError("--multiprocessing_distributed needs a torchrun launch: bash test/train_full_8p.sh "
                        "--data_path=... (or python -m torch.distributed.run --nproc_per_node=8 train.py ...)")
    device_list = [int(x) for x in args.device_list.split(",") if x.strip()] if world > 1 else None
    dist = distributed.init(args.device, args.npu if args.npu is not None else args.device_id, device_list)
    log = print if dist.is_main else (lambda *a, **k: None)
    resize = parse_int_tuple(args.resize, "--resize")
    resize = resize * 2 if len(resize) == 1 else resize
    decay_epochs = parse_int_tuple(args.staircase_decay_at_epochs, "--staircase_decay_at_epochs")
    if args.batch_size % dist.world_size:
        raise UserError(f"--batch_size {args.batch_size} is not divisible by the {dist.world_size} ranks")
    exp_dir = args.exp_dir or f"exp/deepmar_resnet50/{args.dataset}/partition{args.partition_idx}/run{args.run}"
    model_dir = os.path.join(exp_dir, "model")

    resume_path = None
    if args.resume:
        resume_path = args.resume if args.resume != "auto" else (args.ckpt_file or os.path.join(model_dir, RESUME_NAME))
    resume = checkpoint.load(resume_path) if resume_path else None
    if resume is not None and "deepmar_args" not in resume:
        raise UserError(f"{resume_path} is not a DeepMar resume checkpoint (written as {RESUME_NAME})")
    seed = resume["seed"] if resume else (args.seed if args.seed is not None else
                                          0 if args.set_seed else random.SystemRandom().randrange(2 ** 31))
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
    per_rank_batch = args.batch_size // dist.world_size
    workers = args.workers // dist.world_size if dist.enabled else args.workers
    sampler = DistributedSampler(train_set, dist.world_size, dist.rank, shuffle=True, seed=seed, drop_last=True)
    # the loader's own generator keeps (persistent) worker start-up off the global RNG
    loader = DataLoader(train_set, batch_size=per_rank_batch, sampler=sampler, drop_last=True,
                        collate_fn=skip_none_collate, generator=torch.Generator().manual_seed(seed),
                        **loader_kwargs(workers, device))
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise UserError(f"split '{args.split}' has {len(train_set)} images: fewer than one batch of "
                        f"{per_rank_batch} per rank")

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
    start_epoch = 1
    if resume is not None:
        checkpoint.load_state_dict_checked(model, resume["model"], what=f"resume checkpoint {resume_path}")
        optimizer.load_state_dict(resume["optimizer"])
        amp.load_state_dict(resume.get("amp"))
        start_epoch = resume["epoch"] + 1
        log(f"resumed from {resume_path} at the end of epoch {resume['epoch']}")
    ddp = distributed.wrap_ddp(model, dist, broadcast_buffers=False)
    # evaluation runs in fp32 (unless apex has cast the model itself), so the printed metrics
    # are those eval.py reproduces from the checkpoint
    eval_amp = amp if amp.apex is not None else amp_mod.Amp(False, device)

    if args.test_only:
        evaluate(model, test_set, args, device, eval_amp, dist, args.test_split, log)
        distributed.cleanup(dist)
        return

    warmup = args.fps_warmup_steps if args.fps_warmup_steps is not None else (2 if dist.enabled else 9)
    meter = FpsMeter(args.batch_size, warmup)
    log(f"seed {seed}; device {device}; precision {amp.mode}; channels_last {args.channels_last}; "
        f"{dist.world_size} rank(s) x batch {per_rank_batch}; {steps_per_epoch} steps per epoch; "
        f"throughput excludes the first {warmup} steps of each epoch (all but the last in shorter epochs)")
    global_step = (start_epoch - 1) * steps_per_epoch
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
        for step, batch in enumerate(loader, 1):
            data_time = meter.data_time()
            if batch is None:
                skipped_images += per_rank_batch
                continue
            x, y = batch
            skipped_images += per_rank_batch - len(y)
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
            loss_sum += loss_value
            loss_n += 1
            if step % args.steps_per_log == 0 or step == steps_per_epoch:
                log(f"{time_str()}, Step {step}/{steps_per_epoch} in Ep {epoch}, {batch_time:.2f}s, "
                    f"datatime:{data_time:.6f}, batchtime:{batch_time:.6f}, FPS:{meter.rate(batch_time):.2f}, "
                    f"loss:{loss_value:.4f}")
            if args.max_steps is not None and global_step >= args.max_steps:
                break
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
        if dist.is_main:
            state = {"deepmar_args": vars(args), "seed": seed, "epoch": epoch, "global_step": global_step,
                     "model": distributed.unwrap(ddp).state_dict(), "optimizer": optimizer.state_dict(),
                     "amp": amp.state_dict(), "rng": checkpoint.rng_state()}
            checkpoint.atomic_save(state, os.path.join(model_dir, RESUME_NAME))
            if epoch % args.epochs_per_save == 0 or last or stopped:
                # upstream's layout; the extra 'deepmar_args' lets eval.py/export.py rebuild the same
                # input size and arch (upstream readers ignore it)
                upstream = {"state_dicts": [state["model"], state["optimizer"]], "ep": epoch, "scores": 0,
                            "deepmar_args": vars(args)}
                path = os.path.join(model_dir, f"ckpt_epoch{epoch}.pth")
                checkpoint.atomic_save(upstream, path)
                log(f"saved {path}")
        if epoch % args.epochs_per_val == 0 or last:
            evaluate(distributed.unwrap(ddp), test_set, args, device, eval_amp, dist, args.test_split, log)
        if stopped:
            log(f"stopped after --max_steps {args.max_steps} optimizer steps")
            break
    distributed.barrier(dist)
    distributed.cleanup(dist)


if __name__ == "__main__":
    main()

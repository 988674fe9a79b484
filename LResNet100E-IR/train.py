"""Train ArcFace (TreB1eN IR-SE-100 by default) on faces_emore, as the Ascend LResNet100E-IR port.

    python train.py --data_path ./data/faces_emore --batch-size 256 --lr 0.001 --epochs 20 --max_iter -1
    torchrun --nproc_per_node 8 train.py --data_path ... --batch-size 2560 --lr 0.01 --distributed 1

--batch-size is the global batch (per device = batch / world size, as the port). The data is
the prepared imgs/ folder when present, else train.rec read directly.
"""
import argparse
import math
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from face_arcface import architecture, training_checkpoint, weights
from face_arcface.arcface import Arcface
from face_arcface.augment import flip_mask, hflip_where
from face_arcface.faces_emore import decode_bin, find_bin, missing_bin_message, open_train_set
from face_arcface.launch import check_launch
from face_arcface.lr_schedule import lr_at_epoch, set_lr
from face_arcface.optimizer import build_sgd, param_groups
from face_arcface.training_checkpoint import Position
from face_arcface.verification import embed_images, evaluate, normalize_batch
from torch import nn

from common import checkpoint, device, distributed
from common.amp import OPT_LEVELS, Amp
from common.cli import ArgumentParser, add_bool, int_range, nonneg_int, positive_float, positive_int
from common.data import loader_kwargs, skip_none_collate
from common.errors import UserError, main_guard
from common.fps import FpsMeter
from common.metrics_file import FILE_NAME as METRICS_FILE
from common.metrics_file import MetricsFile, add_tensorboard_arg
from common.progress import Console
from common.sampling import EpochSampler

MODEL_DIR = Path(__file__).resolve().parent
# Test hook of tests/test_scripts.py (--max_restarts): rank 1 SIGKILLs itself once, after this global
# step of the first attempt, so that torchrun restarts the job. Unset in every real run.
KILL_AT_STEP = int(os.environ.get("LRESNET_TEST_KILL_RANK1_AT_STEP", "0") or 0)


def milestones_arg(text):
    """--milestones: comma-separated 0-based epochs (may be empty); kept as text, checked here."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs (integers >= 0), got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected epochs >= 0, got {text!r}")
    return ",".join(str(v) for v in values)


def loss_scale_arg(text):
    """--loss_scale: 'dynamic' or a number > 0 (kept as the text the scripts pass, e.g. '128.0')."""
    v = str(text).strip()
    if v.lower() == "dynamic":
        return "dynamic"
    try:
        ok = math.isfinite(float(v)) and float(v) > 0
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected 'dynamic' or a number > 0, got {text!r}")
    return v


def eval_set_arg(text):
    v = str(text).strip()
    if not v or not all(c.isalnum() or c == "_" for c in v):
        raise argparse.ArgumentTypeError(f"expected a .bin name such as lfw, agedb_30, cfp_fp, or none; got {text!r}")
    return v


def get_args_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    # network (card; --units/--widths/--input_size are extras for tiny test models)
    architecture.add_arch_args(p)
    # data (card)
    a("--data_mode", "-d", default="emore", choices=("emore", "ms1m", "vgg"))
    a("--data_path", default="./data/faces_emore", help="faces_emore folder (imgs/ or train.rec, lfw.bin)")
    a("--data_format", default="auto", choices=("auto", "folder", "rec"),
      help="auto: prepared imgs/ when present, else train.rec directly")
    a("--eval_data_mode", default="lfw", type=eval_set_arg,
      help="verification .bin (in --data_path) checked after each epoch; none: no per-epoch check")
    a("--eval_folds", type=int_range(2), default=5, help="folds of the per-epoch check (upstream 5, no flip TTA)")
    a("--eval_batch_size", type=positive_int, default=512,
      help="per-device batch of the per-epoch check (eval.py's per-device default, so eval.py reproduces it)")
    add_bool(p, "--skip_bad_images", default=False)
    # schedule (card)
    a("--max_iter", type=int_range(-1), default=1000,
      help="break after in-epoch step N (N+1 steps an epoch); -1: full epochs")
    a("--max_steps", type=nonneg_int, default=0, help="extra: stop after N optimizer steps in total (0: no limit)")
    a("--start_epoch", type=nonneg_int, default=0)
    a("--epochs", "-e", type=positive_int, default=20)
    a("--batch-size", "--batch_size", "-b", dest="batch_size", type=positive_int, default=96,
      help="GLOBAL batch of all devices (per device = batch / world size, as the port)")
    a("--lr", type=positive_float, default=1e-3, help="initial lr (the port's default; the card's text says 0.01, "
                                                      "which its 8p script passes)")
    a("--milestones", type=milestones_arg, default="12,15,18",
      help="0-based epochs at whose start every lr is divided by 10")
    a("--num_workers", "--num-workers", "--workers", "-w", dest="num_workers", type=nonneg_int, default=3)
    a("--seed", type=int_range(0, 2 ** 32 - 1), default=2021)
    # finetune / resume / weights
    a("--is_finetune", type=int_range(0, 1), default=0, help="1: start from the backbone weights in --resume")
    a("--resume", nargs="?", const="auto", default=None,
      help="checkpoint to continue exactly (ours; the port's continues at its next epoch); a bare --resume "
           "continues <save_dir>/last.pth, or starts from scratch when there is none")
    a("--pretrained_path", default="", help="backbone weights to start from (plain state_dict, e.g. TreB1eN's "
                                            "model_*.pth, or a checkpoint)")
    a("--head_path", default="", help="ArcFace head to start from (TreB1eN's head_*.pth or a checkpoint)")
    a("--optimizer_path", default="", help="optimizer state to start from (TreB1eN's optimizer_*.pth or a checkpoint)")
    add_bool(p, "--allow_recipe_change", default=False,
             help="resume even when the recipe flags differ from the checkpoint's (logged as a warning)")
    a("--save_dir", default=str(MODEL_DIR / "work_space" / "models"),
      help="checkpoint folder (default: work_space/models of this model folder, as the card)")
    a("--save_every", type=nonneg_int, default=1000,
      help="extra: also write <save_dir>/last.pth every N steps (0: off)")
    # devices, distributed, AMP (card)
    a("--device_type", "--device", dest="device_type", default="auto", choices=device.CHOICES,
      help="npu, gpu/cuda, cpu or auto (npu > cuda > cpu)")
    a("--device_id", type=nonneg_int, default=0)
    a("--distributed", type=int_range(0, 1), default=0,
      help="1: one process per device, started by test/train_*_8p.sh or torchrun (WORLD_SIZE decides)")
    a("--backend", default="", help="accepted; the backend follows the device (hccl/nccl/gloo)")
    a("--dist_url", default="", help="accepted; torchrun sets the rendezvous")
    a("--gpus", type=positive_int, default=1, help="accepted for the port's scripts")
    a("--dist_rank", type=nonneg_int, default=0, help="accepted for the port's scripts")
    add_bool(p, "--use_amp", "--use-amp", "--amp", dest="use_amp", default=True)
    a("--opt_level", "--opt-level", dest="opt_level", default="O2", choices=OPT_LEVELS)
    a("--loss_scale", "--loss-scale", dest="loss_scale", type=loss_scale_arg, default="128.0",
      help="number > 0 or 'dynamic'")
    add_bool(p, "--channels_last", default=True)
    a("--fps_warmup", type=nonneg_int, default=5, help="steps of each epoch left out of fps (upstream: 5)")
    add_tensorboard_arg(p)
    return p


class Trainer:
    """One training run: what it is built from (data, model, optimizer, resume) and its epoch loop.
    `pos` is the run's position, the one thing the loop advances (and a checkpoint stores)."""

    def __init__(self, args):
        self.args = args
        self.dist = distributed.init(args.device_type, args.device_id)
        self.device = self.dist.device
        self.main = self.dist.is_main
        self.console = Console(self.main)  # the rank-0 logger; a per-epoch bar on a terminal only
        self.log = self.console.log
        checkpoint.seed_everything(args.seed)
        os.environ.setdefault("PYTHONHASHSEED", str(args.seed))
        self.per_device_batch = per_device_batch(args.batch_size, self.dist.world_size)
        self.milestones = tuple(int(v) for v in args.milestones.split(",") if v.strip())
        self.arch = architecture.arch_from_args(args)

        bin_path = per_epoch_bin(args)  # checked before the (large) training set is read
        if self.main:
            checkpoint.clean_stale_temps(args.save_dir)  # temps of a crashed write are gone from the start
        finetune_from = self._resume_request(args)
        self._build_data(args, bin_path)
        self._build_model(args, finetune_from)

        self.pos = Position(epoch=args.start_epoch)
        self.resumed_exactly = False
        self.fps = FpsMeter(args.batch_size, warmup=args.fps_warmup)
        if self.resume_path:
            self._resume(self.resume_path)
        # beside the checkpoints; an exact resume keeps the rows up to its step and last completed epoch
        self.metrics = MetricsFile(os.path.join(args.save_dir, METRICS_FILE), enabled=self.main,
                                   resume_step=self.pos.global_step if self.resumed_exactly else None,
                                   resume_epoch=self.pos.epoch - 1 if self.resumed_exactly else None,
                                   tensorboard_dir=args.tensorboard)

    # read-only views of pos (the tests read trainer.epoch, .index, .global_step)
    epoch = property(lambda self: self.pos.epoch)
    index = property(lambda self: self.pos.index)
    global_step = property(lambda self: self.pos.global_step)

    def _resume_request(self, args):
        """Sets resume_path (--resume, a bare --resume or a torchrun restart); returns the --is_finetune file."""
        last = os.path.join(args.save_dir, training_checkpoint.LAST)
        requested, finetune_from = args.resume, ""
        if args.is_finetune:
            if args.resume in (None, "", "auto"):
                raise UserError("--is_finetune 1 needs --resume=<checkpoint>: the backbone weights to finetune from")
            requested, finetune_from = None, args.resume
        self.resume_path = checkpoint.resolve_resume(requested, last, self.log)
        self.auto_resume = bool(self.resume_path) and requested in (None, "", "auto")
        return finetune_from

    def _build_data(self, args, bin_path):
        """Training set, its resumable sampler and loader, and the per-epoch check's pairs."""
        self.train_set = open_train_set(args.data_path, args.data_format, args.input_size, args.skip_bad_images)
        self.sampler = EpochSampler(len(self.train_set), rank=self.dist.rank, world_size=self.dist.world_size,
                                    seed=args.seed)
        self.loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=self.per_device_batch, sampler=self.sampler, collate_fn=skip_none_collate,
            generator=torch.Generator().manual_seed(args.seed),  # keeps the global RNG for dropout only
            **loader_kwargs(args.num_workers, self.device))
        self.val = decode_bin(bin_path, args.input_size) if bin_path else None
        self.log(f"data: {type(self.train_set).__name__} {len(self.train_set)} images, "
                 f"{self.train_set.num_classes} identities from {args.data_path}; per-epoch check: "
                 f"{bin_path or 'none (--eval_data_mode none)'}")

    def _build_model(self, args, finetune_from):
        """Backbone, ArcFace head, SGD, AMP and DDP, from the weight flags when given."""
        self.model = architecture.build_from_arch(self.arch).to(self.device)
        self.head = Arcface(args.embedding_size, self.train_set.num_classes).to(self.device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        init_path = args.pretrained_path or finetune_from
        if init_path:
            initial, _, _ = weights.load_backbone(init_path, self.arch)
            self.model.load_state_dict(initial.state_dict())
            self.log(f"backbone initialised from {init_path}")
        else:
            self.log("backbone: random init (no --pretrained_path)")
        if args.head_path:
            checkpoint.load_state_dict_checked(self.head, weights.head_state(args.head_path),
                                               what=f"head file {args.head_path}")
            self.log(f"ArcFace head initialised from {args.head_path}")
        self.optimizer = build_sgd(param_groups(self.model, self.head, args.net_mode), args.lr)
        if args.optimizer_path:
            weights.load_optimizer_checked(self.optimizer, weights.optimizer_state(args.optimizer_path),
                                           f"optimizer file {args.optimizer_path}")
            self.log(f"optimizer state from {args.optimizer_path}")
        self.amp = Amp(args.use_amp, self.device, args.opt_level, args.loss_scale)
        models, self.optimizer = self.amp.initialize([self.model, self.head], self.optimizer)
        self.model, self.head = models
        self.log(f"model: {args.net_mode}-{args.net_depth} arch={self.arch} on {self.device}, "
                 f"precision {self.amp.mode}, world {self.dist.world_size}, per-device batch {self.per_device_batch}")
        self.ddp_model = distributed.wrap_ddp(self.model, self.dist, broadcast_buffers=False)
        # The port wraps only the backbone; the head is synchronised too so ranks keep one kernel.
        self.ddp_head = distributed.wrap_ddp(self.head, self.dist)
        self.criterion = nn.CrossEntropyLoss()

    def _resume(self, path):
        """Weights, optimizer and (ours) AMP state, position and RNG from a checkpoint."""
        state = training_checkpoint.read_for_resume(path, self.arch, self.args, self.auto_resume, self.log)
        if state is None:
            return
        ours = training_checkpoint.is_ours(state)
        what = f"checkpoint {path}"
        checkpoint.load_state_dict_checked(self.model, state["model"], what=what)
        checkpoint.load_state_dict_checked(self.head, state["head"], what=f"{what} (ArcFace head)")
        if ours:
            training_checkpoint.check_resume_recipe(state, path, self.args, self.log)
        weights.load_optimizer_checked(self.optimizer, state["optimizer"], f"{what} (optimizer)")
        if not ours:  # the Ascend port's layout: weights, head, optimizer and the epoch just finished
            self.pos.epoch = training_checkpoint.port_next_epoch(state, path)
            self.log(f"resumed from {path} (the port's layout): epoch {self.pos.epoch} from its start; the file "
                     f"holds no data position or RNG state, so this is not an exact continuation")
            return
        self.amp.load_state_dict(state.get("amp"))
        self.pos = training_checkpoint.position(state)
        checkpoint.set_rng_state(state["rng"])
        self.resumed_exactly = True
        self.log(f"resumed from {path}: epoch {self.pos.epoch}, in-epoch step {self.pos.index}, "
                 f"step {self.pos.global_step}")

    def save(self, path, finished_epoch: bool, acc=None):
        """Rank 0 writes the checkpoint (and last.pth, the same file)."""
        if self.main:
            state = training_checkpoint.state(self.model, self.head, self.optimizer, self.amp, self.args, self.arch,
                                              self.pos, finished_epoch, acc)
            training_checkpoint.save(state, path, self.args.save_dir)

    # ------------------------------------------------------------------ loop
    def train(self):
        a = self.args
        loss_every = self.loss_every()
        done = self.reached_max_steps()
        if self.pos.epoch >= a.epochs or done:
            self.log(f"nothing left to train: the run is at epoch {self.pos.epoch}, step {self.pos.global_step} "
                     f"(--epochs {a.epochs}{f', --max_steps {a.max_steps}' if a.max_steps else ''})")
        while self.pos.epoch < a.epochs and not done:
            lr = set_lr(self.optimizer, lr_at_epoch(a.lr, self.pos.epoch, self.milestones))
            complete, done = self.train_one_epoch(lr, loss_every)
            acc, thr = self.evaluate()
            self.end_epoch(complete, lr, acc, thr)
            if complete:
                self.pos.next_epoch()
        if self.fps.fps is not None:
            self.log(f"FPS@all {self.fps.fps:.3f} (images/sec of the whole job, "
                     f"first {a.fps_warmup} steps of each epoch excluded, data loading included)")
        else:
            self.log(f"FPS@all not measured: no epoch ran more than {a.fps_warmup} steps")

    def loss_every(self):
        """Upstream: min(500, max_iter // 10), or len(loader) // 10 for full epochs. A --max_steps
        bound (our flag) shortens it too, so a bounded run still logs a loss."""
        a = self.args
        k = min(500, a.max_iter // 10) if a.max_iter > 0 else len(self.loader) // 10
        if a.max_steps:
            k = min(k, a.max_steps // 10)
        return max(1, k)

    def reached_max_steps(self):
        return bool(self.args.max_steps and self.pos.global_step >= self.args.max_steps)

    def epoch_length(self):
        """Steps of a whole epoch on this rank, --max_iter applied."""
        steps = -(-self.sampler.per_rank // self.per_device_batch)
        return min(steps, self.args.max_iter + 1) if self.args.max_iter >= 0 else steps

    def train_one_epoch(self, lr, loss_every):
        """Epoch pos.epoch from in-epoch step pos.index (a resume's), logging the loss every `loss_every`
        steps. Returns (complete, done): whether the epoch ran to its end, whether --max_steps is reached."""
        a, pos = self.args, self.pos
        done = False
        self.sampler.set_epoch(pos.epoch, pos.index * self.per_device_batch)
        self.log(f"epoch {pos.epoch} started")
        self.model.train()
        self.head.train()
        self.fps.reset_epoch()
        epoch_len = self.epoch_length()
        self.console.bar(epoch_len, f"Ep {pos.epoch}/{a.epochs}", initial=pos.index)
        for index, batch in enumerate(self.loader, start=pos.index):
            pos.index = index
            if batch is None or len(batch[0]) < 2:  # all skipped, or a 1-image tail BatchNorm1d cannot train on
                continue
            loss, seconds = self.step(*batch)
            pos.add_loss(loss)
            images_per_sec = self.fps.rate(seconds, len(batch[0]) * self.dist.world_size)
            self.console.update(loss=loss, images_per_sec=images_per_sec)
            if pos.index % loss_every == 0 and pos.index != 0:
                self.log_loss(lr, pos.loss_sum / loss_every, images_per_sec)
                pos.loss_sum = 0.0
            done = self.reached_max_steps()
            if done or (a.max_iter >= 0 and pos.index >= a.max_iter):
                break  # end_epoch() saves
            if a.save_every and pos.global_step % a.save_every == 0:
                self.save(os.path.join(a.save_dir, training_checkpoint.LAST), finished_epoch=False)
        self.console.close_bar()
        complete = pos.index + 1 >= epoch_len  # else --max_steps stopped it: resume mid-epoch
        return complete, done

    def log_loss(self, lr, loss, images_per_sec):
        stamp = datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
        self.log(f"time:[{stamp}] \tstep: [{self.pos.index}] \ttrain_loss: {loss}")
        self.metrics.step(self.pos.epoch, self.pos.global_step, lr=lr, images_per_sec=images_per_sec, loss=loss)

    def step(self, imgs, labels):
        """One optimizer step (pos.global_step + 1); returns (loss, seconds of the step)."""
        a, pos = self.args, self.pos
        x = normalize_batch(imgs, self.device, a.channels_last)
        x = hflip_where(x, flip_mask(len(x), a.seed + 7919 * self.dist.rank, pos.epoch, pos.index, self.device))
        labels = labels.to(self.device, non_blocking=True)
        with self.amp.autocast():
            emb = self.ddp_model(x)
        logits = self.ddp_head(emb.float(), labels)  # fp32 margin and loss
        loss = self.criterion(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.amp.backward(loss, self.optimizer)
        self.amp.step(self.optimizer)
        value = loss.item()
        pos.global_step += 1
        if KILL_AT_STEP and self.dist.rank == 1 and distributed.restart_count() == 0 \
                and pos.global_step == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook only (see KILL_AT_STEP)
        if not math.isfinite(value):
            raise UserError(f"non-finite loss ({value}) at step {pos.global_step} (epoch {pos.epoch}, "
                            f"in-epoch step {pos.index}); the last checkpoint in {a.save_dir} is intact")
        seconds = self.fps.step(len(imgs) * self.dist.world_size)
        return value, seconds

    def evaluate(self):
        """The per-epoch check on every rank: (accuracy, threshold) on rank 0, (None, None) elsewhere
        and without a check."""
        a = self.args
        acc = thr = None
        if self.val is not None:
            # every rank embeds with rank 0's BatchNorm statistics: the figure is the saved model's
            distributed.sync_buffers_from_main(self.model, self.dist)
            emb = embed_images(self.model, self.val[0], a.eval_batch_size, self.device, self.amp, flip=False,
                               dist=self.dist, channels_last=a.channels_last, embedding_size=a.embedding_size)
            if self.main:
                acc, thr = evaluate(emb, self.val[1], a.eval_folds)
                self.log("=" * 24)
                self.log(f"{a.eval_data_mode}_accuracy: \t{acc}")
                self.log(f"{a.eval_data_mode}_best_threshold: \t{thr}")
                self.log("=" * 24)
        return acc, thr

    def end_epoch(self, complete, lr, acc, thr):
        """Save the epoch's checkpoint (also last.pth), log fps, write the epoch row."""
        a, pos = self.args, self.pos
        stamp = str(datetime.now())[:-10].replace(" ", "-").replace(":", "-")
        acc_text = f"{acc:.5f}" if acc is not None else "None"
        path = os.path.join(a.save_dir, f"model_{stamp}_epoch:{pos.epoch}_{acc_text}.pth")
        self.save(path, finished_epoch=complete, acc=acc)
        self.log(f"checkpoint saved: {path}")
        fps = self.fps.epoch_fps
        if fps is not None:
            self.log("*" * 39)
            self.log("fps: %f" % (fps / self.dist.world_size))  # per device, as upstream (CI multiplies)
            self.log("*" * 39)
        # an epoch cut short by --max_steps gets its row too; a resume from it drops the row and writes it again
        metrics = {} if acc is None else {f"{a.eval_data_mode}_accuracy": acc,
                                          f"{a.eval_data_mode}_best_threshold": thr}
        mean = pos.epoch_loss_sum / pos.epoch_loss_steps if pos.epoch_loss_steps else None
        self.metrics.epoch(pos.epoch, pos.global_step, lr=lr, images_per_sec=fps, losses={"loss": mean},
                           metrics=metrics)
        distributed.barrier(self.dist)


def per_device_batch(batch_size, world):
    """The one place where the global batch becomes the per-device batch (as the port)."""
    if batch_size % world:
        raise UserError(f"--batch-size {batch_size} is not divisible by the {world} devices")
    per_device = batch_size // world
    if per_device < 2:
        raise UserError(f"--batch-size {batch_size} gives {per_device} image per device; "
                        f"BatchNorm needs at least 2: use --batch-size >= {2 * world}")
    return per_device


def per_epoch_bin(args):
    """The .bin of the per-epoch check (None with --eval_data_mode none); one line when missing."""
    if not os.path.isdir(args.data_path):
        raise UserError(f"--data_path not found (expected the faces_emore directory): {args.data_path}")
    if args.eval_data_mode == "none":
        return None
    bin_path = find_bin(args.data_path, args.eval_data_mode)
    if bin_path is None:
        raise UserError(missing_bin_message(args.data_path, args.eval_data_mode,
                                            f"the per-epoch check (--eval_data_mode {args.eval_data_mode})")
                        + "; or pass --eval_data_mode=none to train without measuring accuracy")
    return bin_path


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    check_launch(args, "train_full_8p.sh", "train.py")
    if args.resume is None and not args.is_finetune and distributed.restart_count() == 0 \
            and args.start_epoch >= args.epochs:
        raise UserError(f"--start_epoch {args.start_epoch} is not below --epochs {args.epochs}: nothing to train")
    start = time.time()
    trainer = None
    try:
        trainer = Trainer(args)
        trainer.train()
    finally:
        if trainer is not None:
            trainer.metrics.close()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    trainer.log(f"training finished in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()

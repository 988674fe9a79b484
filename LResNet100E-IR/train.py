"""Train ArcFace (TreB1eN IR-SE-100 by default) on faces_emore, as the Ascend LResNet100E-IR port.

    python train.py --data_path ./data/faces_emore --batch-size 256 --lr 0.001 --epochs 20 --max_iter -1
    torchrun --nproc_per_node 8 train.py --data_path ... --batch-size 2560 --lr 0.01 --distributed 1

--batch-size is the global batch (per device = batch / world size, as the port). The data is
the prepared imgs/ folder when present, else train.rec read directly.
"""
import argparse
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from face_arcface import checkpoints, recipe  # noqa: E402
from face_arcface.arcface import Arcface  # noqa: E402
from face_arcface.faces_emore import decode_bin, find_bin, open_train_set  # noqa: E402
from face_arcface.utils import collate_faces, device_choice, str2bool  # noqa: E402
from face_arcface.verification import embed_images, evaluate, normalize_batch  # noqa: E402
from torch import nn  # noqa: E402

from common import checkpoint as ckpt  # noqa: E402
from common import distributed  # noqa: E402
from common.amp import OPT_LEVELS, Amp  # noqa: E402
from common.errors import UserError, main_guard  # noqa: E402
from common.fps import FpsMeter  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    # network (card)
    a("--net_mode", "-net", default="ir_se", choices=("ir", "ir_se", "mobilefacenet"))
    a("--net_depth", "-depth", type=int, default=100, choices=(50, 100, 152))
    a("--drop_ratio", type=float, default=0.6)
    a("--embedding_size", type=int, default=512)
    a("--input_size", type=int, default=112, help="face side in pixels (faces_emore: 112)")
    a("--units", default="", help="extra: units per stage, e.g. 1,1,1,1 (tiny test models)")
    a("--widths", default="", help="extra: stage widths, e.g. 16,32,64,128 (tiny test models)")
    # data (card)
    a("--data_mode", "-d", default="emore", choices=("emore", "ms1m", "vgg"))
    a("--data_path", default="./data/faces_emore", help="faces_emore folder (imgs/ or train.rec, lfw.bin)")
    a("--data_format", default="auto", choices=("auto", "folder", "rec"),
      help="auto: prepared imgs/ when present, else train.rec directly")
    a("--eval_data_mode", default="lfw", help="verification .bin (in --data_path) checked after each epoch")
    a("--eval_folds", type=int, default=5, help="folds of the per-epoch check (upstream 5, no flip TTA)")
    a("--skip_bad_images", action="store_true")
    # schedule (card)
    a("--max_iter", type=int, default=1000, help="break after in-epoch step N (N+1 steps an epoch); -1: full")
    a("--max_steps", type=int, default=0, help="extra: stop after N optimizer steps in total (0: no limit)")
    a("--start_epoch", type=int, default=0)
    a("--epochs", "-e", type=int, default=20)
    a("--batch-size", "--batch_size", "-b", dest="batch_size", type=int, default=96, help="global batch")
    a("--lr", type=float, default=1e-3)
    a("--milestones", default="12,15,18", help="0-based epochs at whose start every lr is divided by 10")
    a("--num_workers", "--num-workers", "--workers", "-w", dest="num_workers", type=int, default=3)
    a("--seed", type=int, default=2021)
    # finetune / resume
    a("--is_finetune", type=int, default=0, help="1: start from the backbone weights in --resume")
    a("--resume", default="", help="checkpoint to continue exactly (or finetune from, with --is_finetune 1)")
    a("--pretrained_path", default="", help="extra: backbone weights to start from (plain or checkpoint)")
    a("--save_dir", default="work_space/models")
    a("--save_every", type=int, default=1000, help="extra: also write <save_dir>/last.pth every N steps (0: off)")
    # devices, distributed, AMP (card)
    a("--device_type", "--device", dest="device_type", default="auto", type=device_choice,
      help="npu, gpu/cuda, cpu or auto (npu > cuda > cpu)")
    a("--device_id", type=int, default=0)
    a("--distributed", type=int, default=0, help="accepted; torchrun's WORLD_SIZE decides")
    a("--backend", default="", help="accepted; the backend follows the device (hccl/nccl/gloo)")
    a("--dist_url", default="", help="accepted; torchrun sets the rendezvous")
    a("--gpus", type=int, default=1, help="accepted for the port's scripts")
    a("--dist_rank", type=int, default=0, help="accepted for the port's scripts")
    a("--use_amp", "--use-amp", "--amp", dest="use_amp", type=str2bool, nargs="?", const=True, default=True)
    a("--opt_level", "--opt-level", dest="opt_level", default="O2", choices=OPT_LEVELS)
    a("--loss_scale", "--loss-scale", dest="loss_scale", default="128.0", help="number or 'dynamic'")
    a("--channels_last", type=str2bool, nargs="?", const=True, default=True)
    a("--fps_warmup", type=int, default=5, help="steps of each epoch left out of fps (upstream: 5)")
    return p


class Trainer:
    def __init__(self, args):
        self.args = args
        self.dist = distributed.init(args.device_type, args.device_id)
        self.device = self.dist.device
        self.main = self.dist.is_main
        ckpt.seed_everything(args.seed)
        os.environ.setdefault("PYTHONHASHSEED", str(args.seed))
        world = self.dist.world_size
        if args.batch_size % world:
            raise UserError(f"--batch-size {args.batch_size} is not divisible by the {world} devices")
        self.per_device_batch = args.batch_size // world
        self.milestones = tuple(int(v) for v in args.milestones.split(",") if v.strip())

        self.train_set = open_train_set(args.data_path, args.data_format, args.input_size, args.skip_bad_images)
        self.sampler = recipe.EpochSampler(len(self.train_set), world, self.dist.rank, args.seed)
        workers = max(0, args.num_workers)
        self.loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=self.per_device_batch, sampler=self.sampler, collate_fn=collate_faces,
            num_workers=workers, pin_memory=self.device.type in ("cuda", "npu"),
            persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
            generator=torch.Generator().manual_seed(args.seed))  # keeps the global RNG for dropout only
        self.val = None
        bin_path = find_bin(args.data_path, args.eval_data_mode)
        if bin_path:
            self.val = decode_bin(bin_path, args.input_size)
        self.log(f"data: {type(self.train_set).__name__} {len(self.train_set)} images, "
                 f"{self.train_set.num_classes} identities from {args.data_path}; per-epoch check: "
                 f"{bin_path or 'none (no ' + args.eval_data_mode + '.bin)'}")

        self.arch = checkpoints.arch_from_args(args)
        self.model = checkpoints.build_from_arch(self.arch).to(self.device)
        self.head = Arcface(args.embedding_size, self.train_set.num_classes).to(self.device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        init_path = args.pretrained_path or (args.resume if args.is_finetune else "")
        if init_path:
            weights, _, _ = checkpoints.load_backbone(init_path, self.arch)
            self.model.load_state_dict(weights.state_dict())
            self.log(f"backbone initialised from {init_path}")
        else:
            self.log("backbone: random init (no --pretrained_path)")
        self.optimizer = recipe.build_sgd(recipe.param_groups(self.model, self.head, args.net_mode), args.lr)
        self.amp = Amp(args.use_amp, self.device, args.opt_level, args.loss_scale)
        (self.model, self.head), self.optimizer = self._amp_init()
        self.log(f"model: {args.net_mode}-{args.net_depth} arch={self.arch} on {self.device}, "
                 f"precision {self.amp.mode}, world {world}, per-device batch {self.per_device_batch}")
        self.ddp_model = distributed.wrap_ddp(self.model, self.dist, broadcast_buffers=False)
        # The port wraps only the backbone; the head is synchronised too so ranks keep one kernel.
        self.ddp_head = distributed.wrap_ddp(self.head, self.dist)
        self.criterion = nn.CrossEntropyLoss()

        self.epoch, self.index, self.global_step = args.start_epoch, 0, 0
        self.loss_sum = 0.0
        self.fps = FpsMeter(args.batch_size, warmup=args.fps_warmup)
        self.total_time, self.total_images = 0.0, 0
        if args.resume and not args.is_finetune:
            self._resume(args.resume)

    def _amp_init(self):
        models, opt = self.amp.initialize([self.model, self.head], self.optimizer)
        return tuple(models), opt

    def log(self, *parts):
        if self.main:
            print(*parts, flush=True)

    # ------------------------------------------------------------------ checkpoints
    def state(self, finished_epoch: bool, acc=None):
        return {"model": self.model.state_dict(), "head": self.head.state_dict(),
                "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
                "config": vars(self.args), "arch": self.arch, "amp": self.amp.state_dict(),
                "next_epoch": self.epoch + 1 if finished_epoch else self.epoch,
                "next_index": 0 if finished_epoch else self.index + 1,
                "global_step": self.global_step, "loss_sum": self.loss_sum, "rng": ckpt.rng_state(),
                "lfw_accuracy": acc, "format": "face_arcface/1"}

    def save(self, path, state):
        if self.main:
            ckpt.atomic_save(state, path)
            tmp = os.path.join(self.args.save_dir, ".last.pth.tmp")
            if os.path.abspath(path) != os.path.abspath(os.path.join(self.args.save_dir, "last.pth")):
                if os.path.exists(tmp):
                    os.remove(tmp)
                os.link(path, tmp)  # last.pth = the same file, no second write
                os.replace(tmp, os.path.join(self.args.save_dir, "last.pth"))

    def _resume(self, path):
        state = ckpt.load(path, "cpu")
        if not isinstance(state, dict) or "next_epoch" not in state or "optimizer" not in state:
            raise UserError(f"--resume {path} is not a full face_arcface training checkpoint "
                            f"(use --is_finetune 1 or --pretrained_path to start from weights only)")
        if state.get("arch") != self.arch:
            raise UserError(f"--resume {path} holds a {state.get('arch')} model, the flags ask for {self.arch}")
        ckpt.load_state_dict_checked(self.model, state["model"], what=f"checkpoint {path}")
        ckpt.load_state_dict_checked(self.head, state["head"], what=f"checkpoint {path} (ArcFace head)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.amp.load_state_dict(state.get("amp"))
        self.epoch, self.index = state["next_epoch"], state["next_index"]
        self.global_step, self.loss_sum = state["global_step"], state["loss_sum"]
        ckpt.set_rng_state(state["rng"])
        self.log(f"resumed from {path}: epoch {self.epoch}, in-epoch step {self.index}, step {self.global_step}")

    # ------------------------------------------------------------------ loop
    def loss_every(self):
        """Upstream: min(500, max_iter // 10), or len(loader) // 10 for full epochs. A --max_steps
        bound (our flag) shortens it too, so a bounded run still logs a loss."""
        a = self.args
        k = min(500, a.max_iter // 10) if a.max_iter > 0 else len(self.loader) // 10
        if a.max_steps:
            k = min(k, a.max_steps // 10)
        return max(1, k)

    def train(self):
        a = self.args
        k = self.loss_every()
        done = False
        while self.epoch < a.epochs and not done:
            lr = recipe.lr_at_epoch(a.lr, self.epoch, self.milestones)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            start_index = self.index
            self.sampler.set_epoch(self.epoch, start_index * self.per_device_batch)
            self.log(f"epoch {self.epoch} started")
            self.model.train()
            self.head.train()
            self.fps.reset_epoch()
            for index, batch in enumerate(self.loader, start=start_index):
                self.index = index
                if batch is None or len(batch[0]) < 2:  # all skipped, or a 1-image tail BatchNorm1d cannot train on
                    continue
                loss = self.step(*batch)
                self.loss_sum += loss
                if self.index % k == 0 and self.index != 0:
                    stamp = datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
                    self.log(f"time:[{stamp}] \tstep: [{self.index}] \ttrain_loss: {self.loss_sum / k}")
                    self.loss_sum = 0.0
                done = bool(a.max_steps and self.global_step >= a.max_steps)
                if done or (a.max_iter >= 0 and self.index >= a.max_iter):
                    break  # end_epoch() saves
                if a.save_every and self.global_step % a.save_every == 0:
                    self.save(os.path.join(a.save_dir, "last.pth"), self.state(False))
            epoch_len = -(-self.sampler.per_rank // self.per_device_batch)
            if a.max_iter >= 0:
                epoch_len = min(epoch_len, a.max_iter + 1)
            complete = self.index + 1 >= epoch_len  # else --max_steps stopped it: resume mid-epoch
            self.end_epoch(complete)
            if complete:
                self.epoch += 1
                self.index = 0
        if self.total_time > 0:
            self.log(f"FPS@all {self.total_images / self.total_time:.3f} (images/sec of the whole job, "
                     f"first {a.fps_warmup} steps of each epoch excluded, data loading included)")
        else:
            self.log(f"FPS@all not measured: no epoch ran more than {a.fps_warmup} steps")

    def step(self, imgs, labels):
        a = self.args
        x = normalize_batch(imgs, self.device, a.channels_last)
        x = recipe.hflip_where(x, recipe.flip_mask(len(x), a.seed + 7919 * self.dist.rank, self.epoch,
                                                   self.index, self.device))
        labels = labels.to(self.device, non_blocking=True)
        with self.amp.autocast():
            emb = self.ddp_model(x)
        logits = self.ddp_head(emb.float(), labels)  # fp32 margin and loss
        loss = self.criterion(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.amp.backward(loss, self.optimizer)
        self.amp.step(self.optimizer)
        value = loss.item()
        self.global_step += 1
        if not math.isfinite(value):
            raise UserError(f"non-finite loss ({value}) at step {self.global_step} (epoch {self.epoch}, "
                            f"in-epoch step {self.index}); the last checkpoint in {a.save_dir} is intact")
        self.fps.step(len(imgs) * self.dist.world_size)
        return value

    def end_epoch(self, complete=True):
        a = self.args
        acc = thr = None
        if self.val is not None:
            emb = embed_images(self.model, self.val[0], 2 * self.per_device_batch, self.device, self.amp,
                               flip=False, dist=self.dist, channels_last=a.channels_last)
            if self.main:
                acc, thr = evaluate(emb, self.val[1], a.eval_folds)
                self.log("=" * 24)
                self.log(f"{a.eval_data_mode}_accuracy: \t{acc}")
                self.log(f"{a.eval_data_mode}_best_threshold: \t{thr}")
                self.log("=" * 24)
        stamp = str(datetime.now())[:-10].replace(" ", "-").replace(":", "-")
        acc_text = f"{acc:.5f}" if acc is not None else "None"
        path = os.path.join(a.save_dir, f"model_{stamp}_epoch:{self.epoch}_{acc_text}.pth")
        self.save(path, self.state(complete, acc))
        self.log(f"checkpoint saved: {path}")
        fps = self.fps.epoch_fps
        if fps is not None:
            self.total_time += self.fps.epoch_time
            self.total_images += self.fps.epoch_images
            self.log("*" * 39)
            self.log("fps: %f" % (fps / self.dist.world_size))  # per device, as upstream (CI multiplies)
            self.log("*" * 39)
        distributed.barrier(self.dist)


@main_guard
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    start = time.time()
    trainer = Trainer(args)
    try:
        trainer.train()
    finally:
        distributed.cleanup(trainer.dist)
    trainer.log(f"training finished in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()

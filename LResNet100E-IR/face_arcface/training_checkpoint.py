"""What train.py's checkpoints hold, how they are written, and how a resume reads them back.

Ours: the port's keys {'model', 'head', 'optimizer', 'epoch', 'config'} plus what an exact resume
needs (the `Position`, the architecture, the AMP state, the RNG states); plain data only, so the
file loads with weights_only=True. The port's layout (no 'next_epoch') resumes at its next epoch.
"""
import argparse
import os
from dataclasses import dataclass

from common import checkpoint, distributed
from common.errors import UserError

from .architecture import same_arch

FORMAT = "face_arcface/2"
LAST = "last.pth"
# flags whose change would make a resumed run a different experiment (the architecture is checked apart)
RECIPE_KEYS = ("lr", "batch_size", "seed", "milestones", "max_iter", "use_amp", "opt_level", "loss_scale")


@dataclass
class Position:
    """Where a run is: the counters an exact resume continues from."""
    epoch: int = 0
    index: int = 0  # in-epoch step of the batch being trained
    global_step: int = 0  # optimizer steps since the start of the run
    loss_sum: float = 0.0  # losses since the last `train_loss:` line (upstream's running_loss)
    epoch_loss_sum: float = 0.0  # the epoch row's mean loss (kept across a resume)
    epoch_loss_steps: int = 0

    def add_loss(self, loss: float):
        self.loss_sum += loss
        self.epoch_loss_sum += loss
        self.epoch_loss_steps += 1

    def next_epoch(self):
        self.epoch, self.index = self.epoch + 1, 0
        self.epoch_loss_sum, self.epoch_loss_steps = 0.0, 0


def state(model, head, optimizer, amp, args, arch, pos: Position, finished_epoch: bool, acc=None) -> dict:
    """Plain data only (tensors, numbers, strings, lists, dicts): loads with weights_only=True."""
    return {"model": model.state_dict(), "head": head.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": pos.epoch,
            "config": checkpoint.plain_args(args), "arch": arch, "amp": amp.state_dict(),
            "next_epoch": pos.epoch + 1 if finished_epoch else pos.epoch,
            "next_index": 0 if finished_epoch else pos.index + 1,
            "global_step": pos.global_step, "loss_sum": float(pos.loss_sum), "rng": checkpoint.rng_state(),
            "epoch_loss_sum": 0.0 if finished_epoch else float(pos.epoch_loss_sum),
            "epoch_loss_steps": 0 if finished_epoch else pos.epoch_loss_steps,
            "lfw_accuracy": None if acc is None else float(acc),
            "run_id": os.environ.get("TORCHELASTIC_RUN_ID"), "format": FORMAT}


def save(state: dict, path, save_dir):
    """Atomic write of `path`; <save_dir>/last.pth then names the same file (a hard link, no second write)."""
    checkpoint.atomic_save(state, path)
    last = os.path.join(save_dir, LAST)
    if os.path.abspath(path) != os.path.abspath(last):
        tmp = os.path.join(save_dir, ".last.pth.tmp")
        if os.path.exists(tmp):
            os.remove(tmp)
        os.link(path, tmp)
        os.replace(tmp, last)


def is_ours(state: dict) -> bool:
    return "next_epoch" in state


def read_for_resume(path, arch: dict, args, auto_resume: bool, log) -> dict | None:
    """The checkpoint to resume from, checked against this run (architecture, recipe flags); None
    when a restarted job finds another run's file (it starts from scratch, said in the log)."""
    state = checkpoint.require_dict(checkpoint.load(path, "cpu"), path)
    if not all(isinstance(state.get(k), dict) for k in ("model", "head", "optimizer")):
        raise UserError(f"--resume {path} is not a training checkpoint with 'model', 'head' and 'optimizer' "
                        f"(use --is_finetune 1 or --pretrained_path to start from weights only)")
    if not is_ours(state):
        return state
    if auto_resume and distributed.restart_count() > 0:
        run_id = os.environ.get("TORCHELASTIC_RUN_ID")
        if state.get("run_id") not in (None, "none", run_id) and run_id not in (None, "none"):
            log(f"restart {distributed.restart_count()} of the job: {path} belongs to another run "
                f"({state.get('run_id')}): starting from scratch")
            return None
    if not same_arch(state.get("arch") or {}, arch):
        raise UserError(f"--resume {path} holds a {state.get('arch')} model, the flags ask for {arch}")
    return state


def check_resume_recipe(state: dict, path, args, log):
    """Refuse (or, with --allow_recipe_change, warn about) recipe flags that differ from the file's."""
    saved = state.get("config")
    saved = checkpoint.plain_args(saved) if isinstance(saved, (dict, argparse.Namespace)) else {}
    checkpoint.check_recipe(saved, checkpoint.plain_args(args), RECIPE_KEYS, path,
                            allowed=args.allow_recipe_change, log=log)


def port_next_epoch(state: dict, path) -> int:
    """The Ascend port's layout holds the epoch just finished: the run continues at the next one."""
    try:
        return int(state.get("epoch", -1)) + 1
    except (TypeError, ValueError):
        raise UserError(f"--resume {path}: 'epoch' is {state.get('epoch')!r}, not an epoch number") from None


def position(state: dict) -> Position:
    """Our checkpoint's position; files of earlier versions hold no epoch mean (the epoch row then
    averages the steps after the resume)."""
    return Position(epoch=state["next_epoch"], index=state["next_index"], global_step=state["global_step"],
                    loss_sum=state["loss_sum"], epoch_loss_sum=float(state.get("epoch_loss_sum", 0.0)),
                    epoch_loss_steps=int(state.get("epoch_loss_steps", 0)))

"""Checkpoint files of a run folder (upstream's checkpoint.pth.tar, model_best.pth.tar), the
checkpoint a run continues and what it restores, and loading bare weights."""
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from common import distributed
from common.checkpoint import (
    atomic_save,
    check_recipe,
    load,
    load_state_dict_checked,
    plain_args,
    resolve_resume,
    rng_state,
    set_rng_state,
)
from common.errors import UserError

CHECKPOINT = "checkpoint.pth.tar"  # upstream's file names
KILL_HOOK = "HRNET_TEST_KILL_AT_STEP"  # tests only: see maybe_kill_for_test
# flags whose change makes a resumed run a different training run than the one it continues
RECIPE_KEYS = ("bs", "lr", "seed", "dn", "lr_schedule")


def extract_state_dict(obj, path) -> dict:
    """A plain state_dict (released weights, model_best/final_state.pth.tar) or a training
    checkpoint holding one under 'state_dict'."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise UserError(f"{path}: not an HRNet state_dict or checkpoint (expected tensors by layer name)")
    return obj


def load_weights(model, path, what="weights"):
    load_state_dict_checked(model, extract_state_dict(load(path, what=what), path), what=f"{what} {path}")


def save_checkpoint(states: dict, is_best: bool, output_dir: Path, filename="checkpoint.pth.tar"):
    """Upstream's save_checkpoint, written atomically: the full training state, and the bare
    state_dict as model_best.pth.tar when top-1 improved."""
    atomic_save(states, output_dir / filename)
    if is_best:
        atomic_save(states["state_dict"], output_dir / "model_best.pth.tar")


@dataclass
class Position:
    """Where training stands, as a checkpoint records it: the epoch to train (0-based), the steps of
    it already done, the optimizer steps of the whole run, the last and the best validation top-1."""
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    perf: float = 0.0
    best_perf: float = 0.0


class Checkpointer:
    """Writes the run folder's checkpoint.pth.tar on rank 0: weights, optimizer, AMP and RNG states,
    the position, the recipe and flags (`info`). `after_step` is called by train_one_epoch after
    every optimizer step: a checkpoint every `save_freq` steps (--save_freq; 0: none mid-epoch)."""

    def __init__(self, folder: Path, model, optimizer, amp, *, dist, save_freq: int, info: dict, position: Position):
        self.folder, self.model, self.optimizer, self.amp, self.dist = folder, model, optimizer, amp, dist
        self.save_freq, self.info = save_freq, info
        self.perf, self.best_perf = position.perf, position.best_perf

    def state(self, epoch: int, step_in_epoch: int, global_step: int) -> dict:
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                "model": self.info["model"], "state_dict": self.model.state_dict(), "perf": self.perf,
                "best_perf": self.best_perf, "optimizer": self.optimizer.state_dict(), "amp": self.amp.state_dict(),
                "rng": rng_state(), "args": self.info["args"], "recipe": self.info["recipe"],
                "cfg": self.info["cfg"], "world_size": self.info["world_size"], "seed": self.info["seed"],
                "run_id": os.environ.get("TORCHELASTIC_RUN_ID", "")}

    def save(self, epoch: int, step_in_epoch: int, global_step: int, is_best: bool = False) -> None:
        if self.dist.is_main:
            save_checkpoint(self.state(epoch, step_in_epoch, global_step), is_best, self.folder)

    def validated(self, top1: float) -> bool:
        """Record a validation's top-1; True when it is the best so far (model_best.pth.tar)."""
        is_best = top1 > self.best_perf
        self.perf, self.best_perf = top1, max(top1, self.best_perf)
        return is_best

    def after_step(self, epoch: int, step_in_epoch: int, global_step: int) -> None:
        if self.save_freq and global_step % self.save_freq == 0:
            self.save(epoch, step_in_epoch, global_step)
        maybe_kill_for_test(global_step, self.dist)


def checkpoint_info(args, cfg, cfg_path, recipe: dict, dn: int) -> dict:
    """What every checkpoint of this run records besides the state: the flags and recipe."""
    return {"model": cfg.MODEL.NAME, "args": plain_args(args), "recipe": recipe, "cfg": str(cfg_path),
            "world_size": dn, "seed": args.seed}


def maybe_kill_for_test(global_step: int, dist) -> None:
    """Test-only hook (the --max_restarts test): with HRNET_TEST_KILL_AT_STEP=N in the environment,
    the last rank SIGKILLs itself after its N-th optimizer step (after that step's checkpoint), in
    the first attempt of a torchrun job only (TORCHELASTIC_RESTART_COUNT 0), so that torchrun
    restarts the job and it resumes by itself. Inert unless the variable is set."""
    at = os.environ.get(KILL_HOOK)
    if at and distributed.restart_count() == 0 and dist.rank == dist.world_size - 1 and global_step == int(at):
        print(f"[test hook] rank {dist.rank} kills itself after step {global_step} ({KILL_HOOK})", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


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


def resume_point(args, cfg, folder: Path, recipe: dict, log):
    """find_resume, refusing what cannot be continued: a file without the training state, or one
    trained with another recipe (unless --allow_recipe_change). Decided before anything is written."""
    path, ckpt = find_resume(args, cfg, folder / CHECKPOINT, log)
    if not path:
        return None, None
    if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "epoch" not in ckpt:
        raise UserError(f"--resume {path}: not a training checkpoint (checkpoint.pth.tar); "
                        "use --pretrained for bare weights")
    try:
        check_recipe(recipe_of(ckpt), recipe, RECIPE_KEYS, path, allowed=args.allow_recipe_change, log=log)
    except UserError as exc:
        raise UserError(f"{exc}; or --fresh to start this run folder over") from None
    return path, ckpt


def restore(ckpt: dict, path, model, optimizer, amp, log) -> Position:
    """Load a training checkpoint into the model, optimizer, AMP and RNGs; where it stands."""
    load_state_dict_checked(model, extract_state_dict(ckpt, path), what=f"checkpoint {path}")
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"checkpoint {path}: its optimizer state does not fit this model/optimizer "
                        f"({str(exc).splitlines()[0]})") from None
    amp.load_state_dict(ckpt.get("amp"))
    set_rng_state(ckpt.get("rng"))
    perf = float(ckpt.get("perf", 0.0))
    at = Position(int(ckpt["epoch"]), int(ckpt.get("step_in_epoch", 0)), int(ckpt.get("global_step", 0)), perf,
                  float(ckpt.get("best_perf", perf)))
    log(f"=> loaded checkpoint (epoch {at.epoch}) from {path}"
        + (f", continuing at step {at.step_in_epoch} of that epoch" if at.step_in_epoch else ""))
    return at

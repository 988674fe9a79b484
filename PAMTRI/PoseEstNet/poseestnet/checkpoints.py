"""Training checkpoints in the run folder: checkpoint.pth (every epoch and at a --max_steps stop, atomic:
model, optimizer, AMP, RNG, epoch, step in epoch, best Mean, args, cfg, recipe), model_best.pth and
final_state.pth (bare state_dicts, upstream keys), and the exact resume from checkpoint.pth."""
import os

from common.checkpoint import (
    atomic_save,
    check_recipe,
    clean_stale_temps,
    load_state_dict_checked,
    plain_args,
    resolve_resume,
    rng_state,
    set_rng_state,
)
from common.errors import UserError

from .weights import load_file

# what a resume must share with the checkpoint (else refused; --allow_recipe_change to go on, logged)
RECIPE_KEYS = ("lr", "lr_step", "lr_factor", "optimizer", "global_batch", "seed", "image_size", "heatmap_size",
               "sigma", "shuffle")


def recipe_of(cfg, args, global_batch):
    return {"lr": cfg.TRAIN.LR, "lr_step": list(cfg.TRAIN.LR_STEP), "lr_factor": cfg.TRAIN.LR_FACTOR,
            "optimizer": cfg.TRAIN.OPTIMIZER, "global_batch": global_batch, "seed": args.seed,
            "image_size": list(cfg.MODEL.IMAGE_SIZE), "heatmap_size": list(cfg.MODEL.HEATMAP_SIZE),
            "sigma": cfg.MODEL.SIGMA, "shuffle": cfg.TRAIN.SHUFFLE}


class Checkpoints:
    """The run folder's checkpoint files for `model` (unwrapped), `optimizer` and `precision` (common.amp);
    only the main rank writes."""

    def __init__(self, out_dir, is_main, model, optimizer, precision, args, cfg, recipe):
        self.out_dir, self.is_main = out_dir, is_main
        self.path = os.path.join(out_dir, "checkpoint.pth")
        self.model, self.optimizer, self.precision = model, optimizer, precision
        self.args, self.cfg, self.recipe = args, cfg, recipe
        if is_main:
            clean_stale_temps(out_dir)  # temporaries of a checkpoint write that crashed in an earlier run

    def resume(self, requested, log):
        """Load the checkpoint `requested` names ("auto": this run folder's checkpoint.pth, none yet: from
        scratch, logged) into the model, optimizer, AMP and RNG.
        -> (epoch, step in epoch, global step, best perf), or None when there is nothing to resume."""
        resume = resolve_resume(requested, self.path, log=log)
        if not resume:
            return None
        state = load_file(resume, "--resume checkpoint")
        if not isinstance(state, dict) or "optimizer" not in state or "state_dict" not in state:
            raise UserError(f"{resume} is not a PoseEstNet training checkpoint (needs state_dict and optimizer)")
        saved = state.get("recipe") if isinstance(state.get("recipe"), dict) else {}
        check_recipe(saved, self.recipe, RECIPE_KEYS, resume, allowed=bool(self.args.allow_recipe_change), log=log)
        load_state_dict_checked(self.model, state["state_dict"], what=f"checkpoint {resume}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.precision.load_state_dict(state.get("amp"))
        set_rng_state(state.get("rng"))
        log(f"=> resumed from {resume} (epoch {state['epoch']}, step {state.get('step', 0)})")
        return (state["epoch"], state.get("step_in_epoch", 0), state.get("step", 0),
                state.get("best_perf", state.get("perf", -1.0)))

    def save(self, epoch, step_in_epoch, step, perf, best_perf, is_best=False):
        """checkpoint.pth to continue from epoch `epoch`, batch `step_in_epoch`; model_best.pth when `is_best`."""
        if not self.is_main:
            return
        atomic_save({"epoch": epoch, "step_in_epoch": step_in_epoch, "step": step, "model": self.cfg.MODEL.NAME,
                     "state_dict": self.model.state_dict(), "perf": perf, "best_perf": best_perf,
                     "optimizer": self.optimizer.state_dict(), "amp": self.precision.state_dict(), "rng": rng_state(),
                     "args": plain_args(self.args), "cfg": self.cfg.dump(), "recipe": self.recipe}, self.path)
        if is_best:
            atomic_save(self.model.state_dict(), os.path.join(self.out_dir, "model_best.pth"))

    def save_final(self):
        if self.is_main:
            atomic_save(self.model.state_dict(), os.path.join(self.out_dir, "final_state.pth"))

"""DeepMar's checkpoints: reading a resume file of any layout (with its recipe check), restoring
the training state from it, and writing the run's checkpoints (ours and upstream's layout)."""
import argparse
import os

from common import checkpoint, distributed
from common.cli import parse_int_tuple
from common.errors import UserError

from .lr_schedule import lrs_at
from .model import extract_state_dict
from .transforms import parse_resize

# the model card's (Ascend port's) name of the latest checkpoint, ".path.tar" spelled as there
RESUME_NAME = "checkpoint.path.tar"
# flags a resume must not change silently (the rest, e.g. --total_epochs or --max_steps, may change)
RECIPE_KEYS = ("batch_size", "new_params_lr", "finetuned_params_lr", "sgd_weight_decay", "sgd_momentum",
               "staircase_decay_at_epochs", "staircase_decay_multiple_factor", "weighted_entropy", "split",
               "partition_idx", "resize", "arch", "last_conv_stride", "drop_pool5", "drop_pool5_rate", "seed")


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




def check_resume_recipe(args, resume, path, log):
    """Refuse (or, with --allow_recipe_change, log) a resume whose recipe flags differ from the
    checkpoint's. No seed asked for: the checkpoint's is kept, so the seed is no change then."""
    current = vars(args).copy()
    saved = dict(resume["args"])
    if args.seed is None and not args.set_seed:
        current.pop("seed", None)
    else:
        current["seed"] = args.seed if args.seed is not None else 0
        saved["seed"] = resume["seed"] if resume["seed"] is not None else saved.get("seed")
    checkpoint.check_recipe(recipe(saved), recipe(current), RECIPE_KEYS, path, allowed=args.allow_recipe_change,
                            log=log)


def restore(resume, path, model, optimizer, precision, base_lrs, args, steps_per_epoch, seed, log):
    """Load a read resume file into the model, optimizer and loss scaler, and set the staircase lr
    in force at its epoch (files of any layout, every rank alike). Returns (start_epoch, global_step)."""
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
    precision.load_state_dict(resume["amp"] if isinstance(resume["amp"], dict) else None)
    global_step = resume["global_step"] if resume["global_step"] is not None else resume["epoch"] * steps_per_epoch
    decay_epochs = parse_int_tuple(args.staircase_decay_at_epochs, "--staircase_decay_at_epochs")
    lrs = lrs_at(resume["epoch"], base_lrs, decay_epochs, args.staircase_decay_multiple_factor)
    for g, lr in zip(optimizer.param_groups, lrs):
        g["lr"] = lr
    exact = "" if resume["layout"] == "DeepMar" or resume["seed"] is not None else \
        f" ({resume['layout']} layout: weights and optimizer restored; the data order follows seed {seed})"
    log(f"resumed from {path} at the end of epoch {resume['epoch']}{exact}")
    return resume["epoch"] + 1, global_step


def save_checkpoints(model_dir, args, seed, epoch, global_step, model, optimizer, precision, upstream_copy, log):
    """Rank 0, after each epoch: <model_dir>/RESUME_NAME (the exact resume point); with
    `upstream_copy` also ckpt_epoch<epoch>.pth in upstream's layout."""
    flags = checkpoint.plain_args(args)
    state = {"deepmar_args": flags, "seed": seed, "epoch": epoch, "global_step": global_step,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "amp": precision.state_dict(), "rng": checkpoint.rng_state()}
    checkpoint.atomic_save(state, os.path.join(model_dir, RESUME_NAME))
    if upstream_copy:
        # upstream's layout; the extra keys (flags, seed, step) let eval.py/export.py rebuild the
        # same input size and arch and --resume continue exactly (upstream readers ignore them)
        upstream = {"state_dicts": [state["model"], state["optimizer"]], "ep": epoch, "scores": 0,
                    "deepmar_args": flags, "seed": seed, "global_step": global_step}
        ckpt_path = os.path.join(model_dir, f"ckpt_epoch{epoch}.pth")
        checkpoint.atomic_save(upstream, ckpt_path)
        log(f"saved {ckpt_path}")

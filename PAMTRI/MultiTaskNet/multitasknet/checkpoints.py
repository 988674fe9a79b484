"""Every weights file in and out: checkpoints as data (never code), upstream's and torchvision's
key names, the model a checkpoint was trained as, train.py's checkpoints (save, find the newest, resume)."""
import argparse
import os
import re
from dataclasses import asdict, dataclass

import torch

from common import checkpoint, distributed
from common.errors import UserError

from .dataset import channel_flags
from .densenet import ARCHS
from .model import NUM_KEYPOINT_VALUES, MultiTaskNet

# Flags that make a run what it is: a --resume with other values is refused (--allow_recipe_change to go on).
RECIPE_KEYS = ("train_batch", "num_instances", "lr", "lr_scaling", "stepsize", "gamma", "weight_decay", "optim",
               "margin", "htri_only", "label_smooth", "lambda_xent", "lambda_htri", "lambda_vcolor", "lambda_vtype",
               "seed", "height", "width")
CHECKPOINT_NAME = re.compile(r"^checkpoint_ep(\d+)(?:_step(\d+))?\.pth\.tar$")


# -- reading weights -----------------------------------------------------------------------
def load_file(path, what="checkpoint"):
    """A checkpoint as data (common.checkpoint.load: never runs code), with the way out for the
    MindSpore card's .ckpt files, which are not PyTorch files."""
    try:
        return checkpoint.load(path, what=what)
    except UserError as exc:
        if str(path).endswith(".ckpt") and os.path.isfile(path):
            raise UserError(f"{exc} - {path} looks like a MindSpore .ckpt; this PyTorch port reads PyTorch files: "
                            "torchvision's densenet121-a639ec97.pth for --pre_ckpt_path (no pthtockpt conversion), "
                            "a checkpoint written by train.py for --ckpt_path") from None
        raise


def load_model_for_eval(path, args):
    """Build the model a checkpoint was trained as (channels, heads, classes) and load it strictly.

    --heatmapaware/--segmentaware may be left out (read from the checkpoint); when given they
    must agree with it. Returns (model, checkpoint dict, config)."""
    obj = load_file(path)
    try:
        sd = modernise_keys(unwrap_checkpoint(obj))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    cfg = dict(obj["config"]) if isinstance(obj, dict) and isinstance(obj.get("config"), dict) else infer_config(sd)
    heat, seg = channel_flags(cfg["in_channels"])
    what = "RGB" + " + heatmaps" * heat + " + segments" * seg
    for flag, wanted, have in (("--heatmapaware", args.heatmapaware, heat), ("--segmentaware", args.segmentaware, seg)):
        if wanted is not None and bool(wanted) != have:
            raise UserError(f"{flag} {bool(wanted)} does not match {path}: its first conv takes "
                            f"{cfg['in_channels']} channels ({what}); drop the flag to follow the checkpoint")
    args.heatmapaware, args.segmentaware = heat, seg
    trained = obj.get("args", {}) if isinstance(obj, dict) and isinstance(obj.get("args"), dict) else {}
    for key in ("height", "width"):  # evaluate at the size the checkpoint was trained at, unless told otherwise
        if getattr(args, key, None) is None:
            setattr(args, key, int(trained.get(key) or 256))
    model = MultiTaskNet(**cfg)
    checkpoint.load_state_dict_checked(model, sd, what=path)
    return model, (obj if isinstance(obj, dict) else {}), cfg


_OLD_DENSE = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
                        r"((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def modernise_keys(state_dict: dict) -> dict:
    """Strip `module.`, map torchvision<0.3 DenseNet names (`norm.1`) to current ones (`norm1`)."""
    out = {}
    for k, v in state_dict.items():
        k = k[len("module."):] if k.startswith("module.") else k
        m = _OLD_DENSE.match(k)
        if m:
            k = m.group(1) + m.group(2)
        out[k] = v
    return out


def unwrap_checkpoint(obj) -> dict:
    """The state_dict inside a checkpoint file (ours, upstream's {'state_dict': ...}, or a bare one)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "net"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise UserError("the file holds no model state_dict")


def imagenet_features(state_dict: dict, arch: str = "densenet121") -> dict:
    """torchvision ImageNet DenseNet weights (`features.*`, e.g. densenet121-a639ec97.pth) as
    a state_dict for `base`. Also accepts a MultiTaskNet checkpoint (`base.*`)."""
    sd = modernise_keys(state_dict)
    feats = {}
    for k, v in sd.items():
        for prefix in ("features.", "base."):
            if k.startswith(prefix):
                feats[k[len(prefix):]] = v
    template = MultiTaskNet(1, arch=arch).base.state_dict()
    for k, v in template.items():
        if k.endswith("num_batches_tracked") and k not in feats:
            feats[k] = torch.zeros_like(v)
    missing = [k for k in template if k not in feats]
    if missing:
        raise UserError(f"pretrained file is not a torchvision {arch}: {len(missing)} backbone keys missing "
                        f"(e.g. features.{missing[0]})")
    feats = {k: feats[k] for k in template}
    if tuple(feats["conv0.weight"].shape[1:]) != (3, 7, 7):
        feats["conv0.weight"] = feats["conv0.weight"][:, :3]  # a widened MultiTaskNet conv0: keep RGB
    bad = [k for k in template if tuple(feats[k].shape) != tuple(template[k].shape)]
    if bad:
        raise UserError(f"pretrained file does not fit {arch}: {bad[0]} has shape {tuple(feats[bad[0]].shape)}, "
                        f"expected {tuple(template[bad[0]].shape)}")
    return feats


def infer_config(state_dict: dict) -> dict:
    """Model constructor arguments from a MultiTaskNet state_dict (ours or upstream's)."""
    sd = modernise_keys(state_dict)
    if "base.conv0.weight" not in sd or "classifier_vid.weight" not in sd:
        raise UserError("not a MultiTaskNet checkpoint: base.conv0.weight / classifier_vid.weight missing")
    blocks = []
    for b in range(1, 5):
        layers = {int(m.group(1)) for k in sd for m in [re.match(rf"base\.denseblock{b}\.denselayer(\d+)\.", k)] if m}
        blocks.append(max(layers) if layers else 0)
    arch = None
    for name, cfg in ARCHS.items():
        if tuple(cfg["block_config"]) == tuple(blocks) and sd["base.conv0.weight"].shape[0] == cfg["num_init_features"]:
            arch = name
    if arch is None:
        raise UserError(f"checkpoint backbone (dense blocks {blocks}) matches none of {', '.join(ARCHS)}")
    multitask = "fc_vcolor.weight" in sd
    keypt_in = sd["fc_vid.weight"].shape[1] if multitask else (sd["fc.weight"].shape[1] if "fc.weight" in sd else 0)
    cfg = dict(arch=arch, in_channels=int(sd["base.conv0.weight"].shape[1]), multitask=multitask,
               num_vids=int(sd["classifier_vid.weight"].shape[0]),
               num_colors=int(sd["classifier_vcolor.weight"].shape[0]) if multitask else 10,
               num_types=int(sd["classifier_vtype.weight"].shape[0]) if multitask else 9)
    feat_dim = sd["base.norm5.weight"].shape[0]
    cfg["keyptaware"] = bool(keypt_in) and keypt_in == feat_dim + NUM_KEYPOINT_VALUES or "fc.weight" in sd
    return cfg


def state_dict_of(path, flag):
    """The state_dict inside a weights file, loaded as data; anything else is one line naming the file."""
    try:
        return unwrap_checkpoint(load_file(path, what=f"{flag} file"))
    except UserError as exc:
        if "holds no model state_dict" in str(exc):
            raise UserError(f"{flag} {path}: the file holds no model state_dict (a dict of tensors, or a "
                            "checkpoint with one under 'state_dict')") from None
        raise


def load_matching(model, path, log=print):
    """Upstream --load-weights: same-name, same-shape tensors only; a file that fits nothing is an error."""
    sd = modernise_keys(state_dict_of(path, "--load-weights"))
    own = model.state_dict()
    matched = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not matched:
        raise UserError(f"--load-weights {path}: no tensor matches this model by name and shape")
    own.update(matched)
    model.load_state_dict(own)
    log(f"Loaded pretrained weights from '{path}': {len(matched)}/{len(own)} tensors "
          f"({len(sd) - len(matched)} in the file skipped)")


# -- train.py's checkpoints ----------------------------------------------------------------
@dataclass
class Progress:
    """Where a training run stands: what a checkpoint stores (besides the weights) to continue exactly."""
    next_epoch: int = 0   # the epoch (0-based) to run next
    next_step: int = 0    # the step of that epoch to start at (> 0: a --max_steps stop inside the epoch)
    global_step: int = 0  # optimizer steps so far
    best_rank1: float = -1.0
    best_epoch: int = 0   # 1-based; 0: no evaluation yet


def save_checkpoint(path, model, optimizer, scheduler, amp, args, progress: Progress, epoch, world_size, cfg, veri,
                    rank1):
    checkpoint.atomic_save({
        "state_dict": distributed.unwrap(model).state_dict(), "rank1": rank1, "epoch": epoch,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "amp": amp.state_dict(),
        "rng": checkpoint.rng_state(), "args": checkpoint.plain_args(args), "config": cfg, "world_size": world_size,
        **asdict(progress), "maps": {"vid": veri.vid_map, "color": veri.color_map, "type": veri.type_map},
    }, path)


def checkpoint_name(epoch: int, progress: Progress) -> str:
    """checkpoint_ep<N>.pth.tar after epoch N (1-based), checkpoint_ep<N>_step<k>.pth.tar inside it."""
    if progress.next_epoch > epoch:
        return f"checkpoint_ep{epoch + 1}.pth.tar"
    return f"checkpoint_ep{epoch + 1}_step{progress.next_step}.pth.tar"


def latest_checkpoint(save_dir):
    """The newest checkpoint_ep<N>[_step<k>].pth.tar of a run folder (by write time), or None."""
    try:
        names = [n for n in os.listdir(save_dir) if CHECKPOINT_NAME.match(n)]
    except OSError:
        return None
    paths = [os.path.join(save_dir, n) for n in names]
    return max(paths, key=lambda q: (os.path.getmtime(q), q)) if paths else None


def resume(path, model, optimizer, scheduler, amp, cfg, dist, args, log=print) -> Progress:
    """Weights, optimizer, schedule, amp and RNG state of a train.py checkpoint; returns where it stopped."""
    ck = load_file(path, what="--resume checkpoint")
    if not isinstance(ck, dict) or "optimizer" not in ck or "next_epoch" not in ck:
        raise UserError(f"--resume {path}: not a checkpoint written by this train.py (use --load-weights for "
                        "upstream model files)")
    saved = ck.get("args")
    saved = vars(saved) if isinstance(saved, argparse.Namespace) else saved if isinstance(saved, dict) else {}
    checkpoint.check_recipe(saved, vars(args), RECIPE_KEYS, path, allowed=bool(args.allow_recipe_change))
    if ck.get("config") != cfg:
        raise UserError(f"--resume {path}: the checkpoint was trained as {ck.get('config')}, this run is {cfg}")
    if ck["next_step"] and ck.get("world_size") != dist.world_size:
        raise UserError(f"--resume {path}: stopped inside an epoch with {ck.get('world_size')} processes; "
                        f"resume it with the same number (now {dist.world_size})")
    checkpoint.load_state_dict_checked(model, ck["state_dict"], what=path)
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    amp.load_state_dict(ck["amp"])
    checkpoint.set_rng_state(ck["rng"])
    progress = Progress(**{k: ck[k] for k in ("next_epoch", "next_step", "global_step", "best_rank1", "best_epoch")})
    log(f"Loaded checkpoint from '{path}'\n- start_epoch: {progress.next_epoch} (step {progress.next_step})\n"
        f"- rank1: {ck.get('rank1')}")
    return progress

"""Weight files: the loaders of train.py, eval.py and export.py (backbone, ArcFace head, optimizer).

Every file goes through common.checkpoint.load (weights_only: a file is data, never code).
Layouts that load:
- ours: {'model', 'head', 'optimizer', 'epoch', 'config', 'arch', ...} (the port's keys plus what
  an exact resume needs; 'config' is a plain dict of the flags);
- the Ascend port's: {'model', 'head', 'optimizer', 'epoch', 'config'} (a 'config' that is a
  pickled EasyDict is code and is refused; re-save it with a plain dict);
- TreB1eN's: separate plain state_dicts model_<stamp>.pth, head_<stamp>.pth ({'kernel'}) and
  optimizer_<stamp>.pth (Learner.save_state), and the released model_ir_se50.pth.
"""
import os

import torch

from common import checkpoint
from common.errors import UserError

from .architecture import build_from_arch

MODEL_SUFFIXES = (".pth", ".pth.tar", ".pt")
NOT_MODEL_PREFIXES = ("head_", "optimizer", "model_attention_")


def newest_model_file(path, log=print):
    """`path` itself, or for a folder (the card's --pth_path is the folder of saved models) its
    newest model file: model_*.pth first (TreB1eN's and ours), else any *.pth / *.pth.tar / *.pt that
    is not a head_/optimizer file; the choice is logged."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    files = [e for e in os.scandir(path) if e.is_file() and e.name.endswith(MODEL_SUFFIXES)
             and not e.name.startswith(NOT_MODEL_PREFIXES)]
    preferred = [e for e in files if e.name.startswith("model_")] or files
    if not preferred:
        raise UserError(f"--pth_path {path} is a folder without model files (expected model_*.pth or *.pth)")
    newest = max(preferred, key=lambda e: (e.stat().st_mtime_ns, e.name))
    log(f"--pth_path {path} is a folder: using its newest model file {newest.path}")
    return newest.path


def load_backbone(path, fallback_arch: dict, map_location="cpu"):
    """(backbone with the file's weights, arch, raw checkpoint). The architecture stored in one of
    our checkpoints wins over the flags; a plain state_dict or a port checkpoint uses the flags."""
    obj = checkpoint.require_dict(checkpoint.load(path, map_location), path)
    arch = dict(fallback_arch)
    if "model" in obj and isinstance(obj["model"], dict):
        state = obj["model"]
        stored = obj.get("arch")
        if isinstance(stored, dict):
            arch.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in stored.items()})
    elif obj and all(torch.is_tensor(v) for v in obj.values()):
        state = obj
    else:
        raise UserError(f"{path} is not a face_arcface checkpoint or backbone state_dict "
                        f"(expected a dict with a 'model' key or parameter tensors)")
    model = build_from_arch(arch)
    checkpoint.load_state_dict_checked(model, state, what=f"checkpoint {path}")
    return model, arch, obj


def head_state(path, map_location="cpu"):
    """The ArcFace head of a file: TreB1eN's head_<stamp>.pth ({'kernel'}) or a checkpoint's 'head'."""
    obj = checkpoint.require_dict(checkpoint.load(path, map_location, what="head file"), path, "head file")
    if "head" in obj and isinstance(obj["head"], dict):
        obj = obj["head"]
    if "kernel" not in obj:
        raise UserError(f"head file {path} holds no ArcFace 'kernel' (expected TreB1eN's head_*.pth or a "
                        f"checkpoint with a 'head')")
    return obj


def optimizer_state(path, map_location="cpu"):
    """An optimizer state_dict: TreB1eN's optimizer_<stamp>.pth or a checkpoint's 'optimizer'."""
    obj = checkpoint.require_dict(checkpoint.load(path, map_location, what="optimizer file"), path, "optimizer file")
    if "optimizer" in obj and isinstance(obj["optimizer"], dict):
        obj = obj["optimizer"]
    if not isinstance(obj.get("param_groups"), list) or not isinstance(obj.get("state"), dict):
        raise UserError(f"optimizer file {path} is not an optimizer state_dict (expected 'state' and "
                        f"'param_groups', as TreB1eN's optimizer_*.pth)")
    return obj


def load_optimizer_checked(optimizer, state, what):
    """optimizer.load_state_dict with one line when the groups do not fit this model's."""
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g.get("params", ())) for g in state["param_groups"]]
    if ours != theirs:
        raise UserError(f"{what} does not fit this model's optimizer: parameter groups of sizes {theirs}, "
                        f"expected {ours}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in state["param_groups"] for i in g["params"]]
    for i, p in zip(ids, params):
        buf = state["state"].get(i, {}).get("momentum_buffer") if isinstance(state["state"].get(i), dict) else None
        if torch.is_tensor(buf) and tuple(buf.shape) != tuple(p.shape):
            raise UserError(f"{what} does not fit this model's optimizer: a momentum buffer of shape "
                            f"{tuple(buf.shape)} for a parameter of shape {tuple(p.shape)}")
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"{what} does not fit this model's optimizer: {exc}".splitlines()[0]) from None

"""Reading weight files as data (never code): the trained PoseEstNet for eval.py, trans.py and
export.py, and any .pth the training reads (ImageNet backbone, --resume checkpoint)."""
import os

import torch

from common.checkpoint import load, load_state_dict_checked
from common.errors import UserError


def load_file(path, what):
    """A weights file loaded as data (never runs code), with the way out for the MindSpore card's .ckpt."""
    try:
        return load(path, what=what)
    except UserError as exc:
        if str(path).endswith(".ckpt") and os.path.isfile(path):
            raise UserError(f"{exc} - {path} looks like a MindSpore .ckpt; this PyTorch port reads PyTorch "
                            "files (model_best.pth / final_state.pth written by train.py, or NVIDIA's .pth)") from None
        raise


def load_pose_weights(model, path, what="PoseEstNet checkpoint"):
    """Accepts model_best.pth / final_state.pth (a bare state_dict), our checkpoint.pth and the
    upstream checkpoint.pth ({'state_dict': ...} with a DataParallel `module.` prefix)."""
    if not path:
        raise UserError("no model file given (--ckpt_path or TEST.MODEL_FILE)")
    state = load_file(path, what)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        if state.get("model") not in (None, "pose_hrnet"):
            raise UserError(f"{path} is a checkpoint of model {state.get('model')!r}, not pose_hrnet")
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} does not hold a pose_hrnet state_dict")
    load_state_dict_checked(model, state, what=f"{what} {path}")
    return model

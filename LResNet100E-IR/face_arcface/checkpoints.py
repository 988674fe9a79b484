"""Architecture records and weight loading shared by train.py, eval.py and export.py.

Checkpoints keep the port's keys {'model', 'head', 'optimizer', 'epoch', 'config'} and add what an
exact resume needs; released TreB1eN weights are plain backbone state_dicts. Either loads here.
"""
import torch

from common import checkpoint as ckpt
from common.errors import UserError

from .model import build_backbone


def parse_ints(text, what):
    if not text:
        return None
    try:
        values = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got '{text}'") from None
    if len(values) != 4 or min(values) < 1:
        raise UserError(f"{what} needs 4 positive integers (one per stage), got '{text}'")
    return values


def arch_from_args(args) -> dict:
    return {"net_mode": args.net_mode, "net_depth": int(args.net_depth), "drop_ratio": float(args.drop_ratio),
            "embedding_size": int(args.embedding_size), "input_size": int(args.input_size),
            "units": parse_ints(getattr(args, "units", ""), "--units"),
            "widths": parse_ints(getattr(args, "widths", ""), "--widths")}


def build_from_arch(arch: dict):
    return build_backbone(**arch)


def load_backbone(path, fallback_arch: dict, map_location="cpu"):
    """(backbone with the file's weights, arch, raw checkpoint). The architecture stored in one of
    our checkpoints wins over the flags; a plain state_dict uses the flags."""
    obj = ckpt.load(path, map_location)
    arch = dict(fallback_arch)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        state = obj["model"]
        arch.update(obj.get("arch") or {})
    elif isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        state = obj
    else:
        raise UserError(f"{path} is not a face_arcface checkpoint or backbone state_dict "
                        f"(expected a dict with a 'model' key or parameter tensors)")
    model = build_from_arch(arch)
    ckpt.load_state_dict_checked(model, state, what=f"checkpoint {path}")
    return model, arch, obj

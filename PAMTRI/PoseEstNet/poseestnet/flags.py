"""Small helpers shared by train.py, eval.py, trans.py and export.py."""
import argparse
import os

import torch
from torch.utils.data import default_collate

from common import cli as zcli
from common.checkpoint import load, load_state_dict_checked
from common.cli import add_bool as common_add_bool
from common.cli import nonneg_int
from common.errors import UserError

DEVICE_TARGETS = {"ascend": "npu", "gpu": "cuda", "cpu": "cpu", "npu": "npu", "cuda": "cuda"}


BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "y", "n", "on", "off"}


def new_parser(doc):
    """common.cli.ArgumentParser: a bad flag is one line (`Error: argument --x: ...`) and exit 1."""
    return zcli.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def tighten_device_id(parser):
    """common.device's --device_id takes any int: a negative one is refused when parsed."""
    for action in parser._actions:
        if "--device_id" in action.option_strings:
            action.type = nonneg_int


def add_bool(parser, *names, default=False, help=None):
    """common.cli.add_bool, and the names remembered for parse_args below (a bare switch before yacs overrides)."""
    common_add_bool(parser, *names, default=default, help=help)
    parser._zoo_bool_flags = getattr(parser, "_zoo_bool_flags", set()) | set(names)


def load_file(path, what):
    """A weights file loaded as data (never runs code), with the way out for the MindSpore card's .ckpt."""
    try:
        return load(path, what=what)
    except UserError as exc:
        if str(path).endswith(".ckpt") and os.path.isfile(path):
            raise UserError(f"{exc} - {path} looks like a MindSpore .ckpt; this PyTorch port reads PyTorch "
                            "files (model_best.pth / final_state.pth written by train.py, or NVIDIA's .pth)") from None
        raise


def collate_counting(batch):
    """-> (collated samples or None, number of samples a dataset skipped as None: --skip_bad_images)."""
    kept = [b for b in batch if b is not None]
    return (default_collate(kept) if kept else None), len(batch) - len(kept)


def parse_args(parser, argv=None):
    """parse_args, except that a bare boolean switch followed by a config override
    (`--cache_images TRAIN.LR 0.1`) does not swallow the override as its value."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    flags = getattr(parser, "_zoo_bool_flags", set())
    fixed = []
    for k, tok in enumerate(argv):
        nxt = argv[k + 1] if k + 1 < len(argv) else None
        if tok in flags and nxt is not None and not nxt.startswith("-") and nxt.lower() not in BOOL_WORDS:
            tok = tok + "=True"
        fixed.append(tok)
    return parser.parse_args(fixed)


def add_cfg_args(parser):
    parser.add_argument("--cfg", default=None,
                        help="experiment yaml (default experiments/veri/hrnet/w32_256x256_adam_lr1e-3.yaml)")
    parser.add_argument("--device_target", default=None, type=str.lower, choices=sorted(DEVICE_TARGETS),
                        help="MindSpore-card spelling of the device (Ascend -> npu, GPU -> cuda, CPU); "
                             "--device wins when both are given")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. TEST.MODEL_FILE model_best.pth")


def requested_device(args):
    if getattr(args, "device", "auto") not in (None, "auto"):
        return args.device
    if getattr(args, "device_target", None):
        return DEVICE_TARGETS[args.device_target]
    return "auto"


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


def resolve_veri_dir(data_dir):
    """The MultiTaskNet VeRi folder: DATA_DIR itself, or DATA_DIR/veri when that holds the CSVs."""
    if not data_dir:
        raise UserError("--data_dir is required (the VeRi folder with image_<split>/ and label_<split>.csv)")
    if not os.path.isdir(data_dir):
        raise UserError(f"data folder not found: {data_dir}")
    sub = os.path.join(data_dir, "veri")
    if os.path.isdir(sub) and not any(f.startswith("label_") for f in os.listdir(data_dir)):
        return sub
    return data_dir

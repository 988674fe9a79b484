"""Checkpoint files: read every layout upstream, the Ascend port and train.py write, load the
weights into a model, and the trained model eval.py and export.py start from (their shared flags)."""
import dataclasses
import os

import torch

from common import checkpoint
from common.cli import int_tuple, parse_int_tuple
from common.errors import UserError

from .model import ARCHS, AlignedReID

CKPT_NAME = "ckpt.pth"
META_KEY = "aligned_reid"


def _looks_like_model(sd) -> bool:
    return isinstance(sd, dict) and any(isinstance(k, str) and k.endswith("base.conv1.weight") for k in sd)


def read_checkpoint(path: str):
    """(list of model state_dicts, meta dict or {}) from any of the forms upstream and we write:
    upstream/Ascend ckpt.pth {'state_dicts': [model, optimizer], 'ep', 'scores'}, ours (the same
    plus META_KEY), a plain state_dict (the released model_weight.pth), {'state_dict': ...};
    `module.` prefixes are accepted. A directory means <dir>/ckpt.pth. The file is read as data
    (common.checkpoint.load: weights_only); anything else is one line."""
    if os.path.isdir(path):
        path = os.path.join(path, CKPT_NAME)
    obj = checkpoint.require_dict(checkpoint.load(path), path)
    meta = obj.get(META_KEY)
    meta = meta if isinstance(meta, dict) else {}
    sds = []
    if isinstance(obj.get("state_dicts"), (list, tuple)):
        sds = [checkpoint.strip_prefix(sd) for sd in obj["state_dicts"] if _looks_like_model(sd)]
    elif _looks_like_model(obj.get("state_dict")):
        sds = [checkpoint.strip_prefix(obj["state_dict"])]
    elif _looks_like_model(obj):
        sds = [checkpoint.strip_prefix(obj)]
    if not sds:
        raise UserError(f"{path} is not an AlignedReID checkpoint (expected ckpt.pth with 'state_dicts' or a "
                        "state_dict with base.conv1.weight, local_conv.*, fc.*)")
    return sds, meta


def num_classes(sd: dict, path) -> int:
    """Identities of the checkpoint's ID classifier (rows of fc.weight)."""
    w = sd.get("fc.weight")
    if not torch.is_tensor(w) or w.dim() != 2:
        raise UserError(f"{path} has no fc.weight matrix (an AlignedReID state_dict has base.*, local_conv.*, "
                        "local_bn.*, fc.*)")
    return int(w.shape[0])


def load_weights(model, sd: dict, what: str) -> None:
    checkpoint.load_state_dict_checked(model, sd, what=what)


def size_from_checkpoint(trained_args: dict, path) -> tuple[int, int]:
    """The input (height, width) a checkpoint was trained with (upstream files: (256,128))."""
    size = parse_int_tuple(trained_args.get("resize_h_w") or "(256,128)", f"resize_h_w of {path}")
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"{path}: resize_h_w {size} is not a (height,width); pass --resize_h_w")
    return size


def add_trained_model_args(p) -> None:
    """--pth_path, --arch, --resize_h_w: the checkpoint eval.py and export.py read, and what it holds."""
    p.add_argument("--pth_path", "--model_weight_file", dest="pth_path", required=True,
                   help="checkpoint file, or a folder holding ckpt.pth")
    p.add_argument("--arch", default=None, choices=list(ARCHS), help="default: from the checkpoint, else resnet50")
    p.add_argument("--resize_h_w", type=int_tuple(2, lo=1), default=None,
                   help="default: from the checkpoint, else (256,128)")


@dataclasses.dataclass
class TrainedModel:
    """Model 1 of a checkpoint and what it was trained with; `build()` makes the model."""
    path: str
    state_dict: dict
    arch: str
    size: tuple[int, int]  # input (height, width)
    trained_args: dict  # the flags it was trained with ({} for upstream files)

    def build(self) -> AlignedReID:
        """The model with the checkpoint's weights, on the CPU."""
        model = AlignedReID(num_classes=num_classes(self.state_dict, self.path), arch=self.arch)
        load_weights(model, self.state_dict, f"checkpoint {self.path}")
        return model


def read_trained_model(path, arch: str | None = None, size: tuple[int, int] | None = None) -> TrainedModel:
    """Model 1 of checkpoint `path`; the architecture and input size default to the ones it was
    trained with (upstream files: resnet50, 256x128)."""
    sds, meta = read_checkpoint(path)
    trained = meta.get("args") if isinstance(meta.get("args"), dict) else {}
    arch = arch or meta.get("arch") or "resnet50"
    arch = arch if arch in ARCHS else "resnet50"
    return TrainedModel(path, sds[0], arch, size or size_from_checkpoint(trained, path), trained)

"""Atomic checkpoints and RNG state capture, so a crash never corrupts a checkpoint and
`--resume` continues exactly."""
import os
import random
import tempfile

import numpy as np
import torch

from .errors import UserError


def atomic_save(obj, path) -> None:
    """torch.save to a temp file in the same directory, fsync, then rename over `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path, map_location="cpu"):
    """Load a checkpoint file; unreadable or missing files are user errors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise UserError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def strip_prefix(state_dict, prefix="module."):
    """Remove a DDP/DataParallel `module.` prefix from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def load_state_dict_checked(model, state_dict, what="checkpoint", allow_missing_bn_counter=True):
    """strict load with one clear line when the keys or shapes belong to another model.

    `num_batches_tracked` buffers absent from old (torch<0.4.1) files default to 0.
    """
    state_dict = strip_prefix(dict(state_dict))
    own = model.state_dict()
    if allow_missing_bn_counter:
        for k, v in own.items():
            if k.endswith("num_batches_tracked") and k not in state_dict:
                state_dict[k] = torch.zeros_like(v)
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    bad_shape = [k for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"{len(bad_shape)} shape mismatches (e.g. {k}: file {tuple(state_dict[k].shape)} "
                         f"vs model {tuple(own[k].shape)})")
        raise UserError(f"{what} does not fit this model: " + "; ".join(parts))
    model.load_state_dict(state_dict, strict=True)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    if not state:
        return
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)

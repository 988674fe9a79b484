"""Checkpoints: atomic saves that never leave a corrupt file, loads that never run code,
RNG states stored as plain data, and the resume rules every train.py shares.

A checkpoint is data. `load` uses `torch.load(weights_only=True)`, which admits tensors,
numbers, strings, lists, tuples and dicts only; the project's own files are written in
those types (flags as a dict, RNG states as tensors). Files of earlier versions of this
project kept numpy RNG states and argparse Namespaces: those two plain-data types are
admitted too, nothing else.
"""
import argparse
import os
import random
import re
import sys
import tempfile

import numpy as np
import torch

from .distributed import restart_count
from .errors import UserError

TEMP_PREFIX = ".tmp_"


def _legacy_data_globals() -> list:
    """numpy arrays/scalars (earlier RNG states, upstream scalars) and argparse.Namespace
    (earlier flag records): reconstructing them runs no user code."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, argparse.Namespace]
    allowed += [type(np.dtype(t)) for t in (np.uint8, np.uint32, np.int32, np.int64, np.float32, np.float64,
                                            np.bool_)]
    return allowed


# ----------------------------------------------------------------------------- saving
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_cleaned_dirs: set[str] = set()


def clean_stale_temps(directory) -> list[str]:
    """Remove the temporaries of checkpoint writes that a crash left in `directory`.

    A temp is `.tmp_<pid>_<name>`; it is stale when that process is gone. Temps of
    earlier versions (`.tmp_<random><name>`, no pid) are stale by definition."""
    directory = os.fspath(directory)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        m = re.match(r"\.tmp_(\d+)_", name)
        if m and (int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1)))):
            continue
        try:
            os.remove(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    if removed:
        print(f"removed {len(removed)} stale checkpoint temp file(s) of a crashed write in {directory}",
              file=sys.stderr, flush=True)
    return removed


def atomic_save(obj, path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`: a
    crash at any moment leaves the previous file intact. The file's mode follows the umask
    like any other file; stale temps of crashed writes in the folder are removed once."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if directory not in _cleaned_dirs:
        clean_stale_temps(directory)
        _cleaned_dirs.add(directory)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}_", suffix="_" + os.path.basename(path),
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def plain_args(args) -> dict:
    """The run's flags as a dict of plain values, for a checkpoint that loads as data."""
    items = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    out = {}
    for k, v in items.items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (bool, int, float, str)) for x in v):
            out[k] = list(v)
        else:
            out[k] = str(v)
    return out


# ----------------------------------------------------------------------------- loading
def _refusal(path, what, exc) -> str:
    text = str(exc)
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m is None and "Weights only load failed" not in text:
        return f"cannot read {what} {path}: {type(exc).__name__}: {text}".splitlines()[0]
    if m is None and "Unsupported operand" in text:
        return f"cannot read {what} {path}: not a PyTorch checkpoint (corrupt or another format)"
    found = f"it needs {m.group(1)}, which is code, not data" if m else "it holds objects that are not plain data"
    return (f"refused to load {what} {path}: {found}; checkpoints are loaded as data (weights_only=True) and "
            "never run code (re-save the weights from a trusted source as a dict of tensors)")


def load(path, map_location="cpu", what="checkpoint"):
    """Load a checkpoint as data. Missing, unreadable and unsafe files are user errors."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    import pickle

    try:
        with torch.serialization.safe_globals(_legacy_data_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(_refusal(path, what, exc)) from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise UserError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def require_dict(obj, path, what="checkpoint") -> dict:
    """A loaded checkpoint must be a dict (state_dict or a wrapper of one)."""
    if not isinstance(obj, dict):
        raise UserError(f"{what} {path} holds a {type(obj).__name__}, expected a dict (a state_dict "
                        "or a checkpoint with one)")
    return obj


def strip_prefix(state_dict, prefix="module."):
    """Remove a DDP/DataParallel `module.` prefix from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def load_state_dict_checked(model, state_dict, what="checkpoint", allow_missing_bn_counter=True):
    """strict load with one clear line when the keys or shapes belong to another model.

    `num_batches_tracked` buffers absent from old (torch<0.4.1) files default to 0.
    """
    if not isinstance(state_dict, dict):
        raise UserError(f"{what} holds a {type(state_dict).__name__} where a state_dict (a dict of tensors) "
                        "was expected")
    state_dict = strip_prefix(dict(state_dict))
    not_tensors = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise UserError(f"{what} is not a state_dict: entry {not_tensors[0]!r} is a "
                        f"{type(state_dict[not_tensors[0]]).__name__}, not a tensor")
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


# ----------------------------------------------------------------------------- resume
def resolve_resume(requested, default_path, log=print):
    """Where to resume from, or None to start from scratch.

    `requested` is the `--resume` value: None (no resume), "auto" (the run folder's own
    checkpoint, `default_path`) or an explicit file. A bare resume with nothing saved yet
    (a crash in epoch 1) starts from scratch and says so; an explicit file must exist.
    After a torchrun restart (`--max_restarts`) the run always resumes from its folder."""
    default_path = os.fspath(default_path) if default_path else None
    restarts = restart_count()
    if requested in (None, "", "auto") and (requested == "auto" or restarts > 0):
        why = f"restart {restarts} of the job" if restarts > 0 and requested != "auto" else "--resume"
        if default_path and os.path.isfile(default_path):
            log(f"{why}: resuming from {default_path}")
            return default_path
        log(f"{why}: nothing to resume from yet ({default_path} does not exist): starting from scratch")
        return None
    if requested in (None, ""):
        return None
    requested = os.fspath(requested)
    if not os.path.isfile(requested):
        raise UserError(f"--resume {requested}: no such checkpoint file (a bare --resume continues the run "
                        "folder's own checkpoint, or starts from scratch when there is none)")
    return requested


def recipe_changes(saved: dict, current: dict, keys) -> list[str]:
    """`--key saved -> current` for each recipe flag that differs between a checkpoint and this run."""
    out = []
    for k in keys:
        if k in saved and k in current and saved[k] != current[k]:
            out.append(f"--{k} {saved[k]} -> {current[k]}")
    return out


def check_recipe(saved: dict, current: dict, keys, path, override_flag="--allow_recipe_change",
                 allowed=False, log=print):
    """Refuse a resume whose recipe flags differ from the checkpoint's, naming the way out;
    with the override the differences are logged loudly and the run goes on."""
    changes = recipe_changes(saved or {}, current, keys)
    if not changes:
        return []
    text = ", ".join(changes)
    if not allowed:
        raise UserError(f"resume from {path} with a different recipe ({text}): rerun with the checkpoint's "
                        f"flags, use a new output folder, or pass {override_flag} to continue anyway")
    log(f"[Warning] resuming {path} with a changed recipe: {text} ({override_flag})")
    return changes


# ----------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) generator states as plain data (tensors, ints, floats)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`'s dict; also reads the raw tuples earlier versions stored."""
    if not state:
        return
    py = state["python"]
    if isinstance(py, dict):
        py = (py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"])
    random.setstate(py)
    npy = state["numpy"]
    if isinstance(npy, dict):
        npy = (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
               npy["cached_gaussian"])
    np.random.set_state(npy)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)

"""Run plumbing shared by train.py and eval.py: upstream's logger layout, checkpoint files,
weight loading, loaders."""
import logging
import math
import os
import time
from argparse import ArgumentTypeError
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from common.checkpoint import atomic_save, load, load_state_dict_checked
from common.data import loader_kwargs, skip_none_collate
from common.errors import UserError
from common.progress import Console

from .imagenet import EpochSampler, ImageNetFolder, ShardSampler, estimate_decoded_bytes, find_classes, scan_split

CACHE_MAX_IMAGES = 20000
CACHE_MAX_BYTES = 1 << 30


def loss_scale_type(text):
    """--loss_scale: 'dynamic', -1 (dynamic) or a static scale > 0."""
    v = str(text).strip()
    if v.lower() == "dynamic":
        return "dynamic"
    try:
        x = float(v)
    except ValueError:
        x = math.nan
    if not (x == -1 or 0 < x < math.inf):
        raise ArgumentTypeError(f"expected 'dynamic', -1 or a number > 0, got {text!r}")
    return v


def retype(parser, dest, type_fn):
    """Give a flag that a shared helper added (--device_id, --loss_scale) a checked type."""
    for action in parser._actions:
        if action.dest == dest:
            action.type = type_fn


class _ConsoleHandler(logging.Handler):
    def __init__(self, console):
        super().__init__()
        self.console = console

    def emit(self, record):
        self.console.log(self.format(record))


class RunLog:
    """Upstream's create_logger: bare messages on stdout, `%(asctime)-15s %(message)s` in
    OUTPUT_DIR/<dataset>/<cfg>/<cfg>_<%Y-%m-%d-%H-%M>_<phase>.log. Only rank 0 says anything."""

    def __init__(self, final_output_dir: Path | None, cfg_name: str, phase: str, enabled: bool):
        self.enabled = enabled
        self.logger = logging.getLogger(f"hrnet_cls.{phase}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.handlers.clear()
        self.file = None
        self.console = Console(enabled)  # bare lines on stdout, above a progress bar on a terminal
        if not enabled:
            return
        self.logger.addHandler(_ConsoleHandler(self.console))
        if final_output_dir is not None:
            final_output_dir.mkdir(parents=True, exist_ok=True)
            self.file = final_output_dir / f"{cfg_name}_{time.strftime('%Y-%m-%d-%H-%M')}_{phase}.log"
            handler = logging.FileHandler(self.file)
            handler.setFormatter(logging.Formatter("%(asctime)-15s %(message)s"))
            self.logger.addHandler(handler)

    def __call__(self, msg: str, console_only: bool = False):
        if not self.enabled:
            return
        if console_only:  # the port print()s these (step_time), outside its logger
            self.console.log(msg)
        else:
            self.logger.info(msg)
            for h in self.logger.handlers:
                h.flush()


def extract_state_dict(obj, path) -> dict:
    """A plain state_dict (released weights, model_best/final_state.pth.tar) or a training
    checkpoint holding one under 'state_dict'."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise UserError(f"{path}: not an HRNet state_dict or checkpoint (expected tensors by layer name)")
    return obj


def load_weights(model, path, what="weights"):
    load_state_dict_checked(model, extract_state_dict(load(path, what=what), path), what=f"{what} {path}")


def save_checkpoint(states: dict, is_best: bool, output_dir: Path, filename="checkpoint.pth.tar"):
    """Upstream's save_checkpoint, written atomically: the full training state, and the bare
    state_dict as model_best.pth.tar when top-1 improved."""
    atomic_save(states, output_dir / filename)
    if is_best:
        atomic_save(states["state_dict"], output_dir / "model_best.pth.tar")


def cache_decision(mode: str, samples) -> bool:
    """--cache_images auto: decode once only when the split is small enough to hold in memory."""
    if mode == "on":
        return True
    if mode == "off" or len(samples) > CACHE_MAX_IMAGES:
        return False
    return estimate_decoded_bytes(samples) <= CACHE_MAX_BYTES


def build_datasets(data_path, image_size, num_classes, *, need_train=True, skip_bad=False, cache="auto", log=print):
    """(train dataset or None, val dataset). Labels are the train split's sorted class folders
    (val's own folders when only val/ exists, as upstream valid.py reads it)."""
    if not os.path.isdir(data_path):
        raise UserError(f"data_path not found (expected a folder with train/ and val/ class folders): {data_path}")
    train = None
    classes = None
    if need_train:
        samples, classes = scan_split(data_path, "train")
        train = ImageNetFolder(samples, classes, image_size, train=True, skip_bad=skip_bad,
                               cache=cache_decision(cache, samples))
        log(f"=> train: {len(samples)} images in {len(classes)} classes under {os.path.join(data_path, 'train')}"
            + (" (decoded once, held in memory)" if train.cache is not None else ""))
    elif os.path.isdir(os.path.join(data_path, "train")):
        classes = find_classes(os.path.join(data_path, "train"))
    val_samples, classes = scan_split(data_path, "val", classes)
    if len(classes) > num_classes:
        raise UserError(f"{data_path}: {len(classes)} classes but the model has MODEL.NUM_CLASSES={num_classes} "
                        "outputs (set MODEL.NUM_CLASSES in the config)")
    val = ImageNetFolder(val_samples, classes, image_size, train=False, skip_bad=skip_bad,
                         cache=cache_decision(cache, val_samples))
    log(f"=> val: {len(val_samples)} images under {os.path.join(data_path, 'val')}"
        + (" (decoded and resized once, held in memory)" if val.cache is not None else ""))
    return train, val


def make_train_loader(dataset, batch_size, workers, device, dist, seed):
    sampler = EpochSampler(len(dataset), dist.rank, dist.world_size, seed=seed, shuffle=True)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=False,
                        collate_fn=skip_none_collate, **loader_kwargs(workers, device))
    return loader, sampler


def make_val_loader(dataset, batch_size, workers, device, dist):
    sampler = ShardSampler(len(dataset), dist.rank, dist.world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=False,
                      collate_fn=skip_none_collate, **loader_kwargs(workers, device))

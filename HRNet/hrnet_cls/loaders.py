"""The train and val datasets of a run (class folders under data_path) and their DataLoaders:
the resumable training order (imagenet.EpochSampler) and disjoint val shards (exact sums)."""
import os

from torch.utils.data import DataLoader

from common.data import loader_kwargs, skip_none_collate
from common.errors import UserError
from common.sampling import ShardSampler

from .imagenet import EpochSampler, ImageNetFolder, estimate_decoded_bytes, find_classes, scan_split

CACHE_MAX_IMAGES = 20000
CACHE_MAX_BYTES = 1 << 30


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
    sampler = ShardSampler(len(dataset), dist.rank, dist.world_size, pad=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=False,
                      collate_fn=skip_none_collate, **loader_kwargs(workers, device))

"""ImageNet in class folders (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`), read as upstream's
torchvision ImageFolder reads it (sorted wnid folders -> labels 0..N-1, PIL decode, RGB), with
upstream's transforms:

  train: RandomResizedCrop(S) [scale (0.08, 1), ratio (3/4, 4/3), bilinear], RandomHorizontalFlip
  val:   Resize(int(S / 0.875)) [shorter side, bilinear], CenterCrop(S)

then ToTensor + Normalize(ImageNet mean/std). Samples leave the workers as uint8 CHW tensors and
`normalize` finishes ToTensor/Normalize on the device in one batched op (the same arithmetic,
a quarter of the inter-process traffic).

Augmentation randomness is a function of (seed, epoch, image index) only, via a per-sample
generator, so a resumed run, or one with another worker count, sees the same crops.
"""
import math
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from common import sampling
from common.data import open_image
from common.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875


def find_classes(split_dir) -> list[str]:
    if not os.path.isdir(split_dir):
        raise UserError(f"ImageNet split folder not found: {split_dir} (expected <data_path>/train and "
                        "<data_path>/val with one folder per class)")
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise UserError(f"no class folders in {split_dir} (expected one folder per class, e.g. n01440764/)")
    return classes


def list_images(class_dir) -> list[str]:
    """Image files under one class folder, recursively, in ImageFolder's (sorted walk) order."""
    found = []
    for root, dirs, files in os.walk(class_dir, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
    return found


def scan_split(data_path, split: str, classes: list[str] | None = None):
    """(samples [(path, label)], class names). `classes` (the train split's) fixes the labels of
    the val split: a val class that train lacks is an error, never a silently shifted label."""
    split_dir = os.path.join(data_path, split)
    names = find_classes(split_dir)
    if classes is None:
        classes = names
    else:
        missing = [n for n in names if n not in set(classes)]
        if missing:
            raise UserError(f"val class '{missing[0]}' ({os.path.join(split_dir, missing[0])}) has no folder in "
                            f"{os.path.join(data_path, 'train')} ({len(missing)} such classes); "
                            "val classes must be train classes")
    index = {c: i for i, c in enumerate(classes)}
    samples = []
    for name in names:
        files = list_images(os.path.join(split_dir, name))
        if not files:
            raise UserError(f"class folder {os.path.join(split_dir, name)} has no images "
                            f"(expected files ending in {', '.join(IMG_EXTENSIONS[:2])}, ...)")
        samples += [(f, index[name]) for f in files]
    return samples, classes


def random_resized_crop_params(width, height, gen, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params (10 tries, then the central crop clamped to
    the ratio range), drawing from the per-sample generator `gen`."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen).item())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,), generator=gen).item()
            j = torch.randint(0, width - w + 1, size=(1,), generator=gen).item()
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def train_transform(img: Image.Image, size: int, gen: torch.Generator) -> Image.Image:
    i, j, h, w = random_resized_crop_params(img.width, img.height, gen)
    img = TF.resized_crop(img, i, j, h, w, [size, size], InterpolationMode.BILINEAR)
    if torch.rand(1, generator=gen).item() < 0.5:
        img = TF.hflip(img)
    return img


def val_transform(img: Image.Image, size: int) -> Image.Image:
    img = TF.resize(img, int(size / CROP_PCT), InterpolationMode.BILINEAR)
    return TF.center_crop(img, [size, size])


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def normalize(batch: torch.Tensor, device, channels_last=False) -> torch.Tensor:
    """uint8 NCHW -> float (x/255 - mean)/std on `device`: ToTensor + Normalize, batched."""
    x = batch.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return x.float().div_(255).sub_(mean).div_(std)


class ImageNetFolder(Dataset):
    """One split. Items are addressed by (index, sample_seed) from EpochSampler (train), or by
    a plain index (val: deterministic transform). With `cache`, decoding (and for val the
    resize + crop too) happens once, here, before the loader's workers fork."""

    def __init__(self, samples, classes, size: int, train: bool, skip_bad=False, cache=False):
        self.samples = samples
        self.classes = classes
        self.size = int(size)
        self.train = train
        self.skip_bad = skip_bad
        self.cache = None
        if cache:
            self.cache = [self._decode(path) for path, _ in samples]
            self.cache = [None if im is None else np.asarray(im if train else val_transform(im, self.size))
                          for im in self.cache]

    def __len__(self):
        return len(self.samples)

    def _decode(self, path):
        return open_image(path, "RGB", skip=self.skip_bad)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, label = self.samples[index]
        if self.cache is not None:
            arr = self.cache[index]
            img = None if arr is None else Image.fromarray(arr)
        else:
            img = self._decode(path)
        if img is None:
            return None
        if self.train:
            gen = torch.Generator().manual_seed(seed if seed is not None else index)
            img = train_transform(img, self.size, gen)
        elif self.cache is None:
            img = val_transform(img, self.size)
        return to_uint8_tensor(img), label


def estimate_decoded_bytes(samples, probe=4) -> int:
    """Decoded RGB bytes of the split, extrapolated from the first few images' headers."""
    if not samples:
        return 0
    step = max(1, len(samples) // probe)
    sizes = []
    for path, _ in samples[::step][:probe]:
        try:
            with Image.open(path) as im:
                sizes.append(im.width * im.height * 3)
        except OSError:
            continue
    return int(np.mean(sizes) * len(samples)) if sizes else 0


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2 ** 63)


class EpochSampler(sampling.EpochSampler):
    """common.sampling.EpochSampler's train order (seeded by (seed, epoch), padded, strided over
    ranks; `set_epoch(epoch, start)` skips what a resumed run already trained on), each index
    yielded with its augmentation seed: ImageNetFolder takes (index, sample_seed)."""

    def __iter__(self):
        for idx in self.indices()[self.start:]:
            yield idx, sample_seed(self.seed, self.epoch, idx)

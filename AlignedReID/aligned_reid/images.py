"""Image decoding as upstream preprocesses it, split in two halves so the slow half runs once.

Upstream: np.asarray(PIL RGB) -> cv2.resize(INTER_LINEAR) to 256x128 if needed (on uint8)
-> /255 -> -mean / std -> horizontal flip when prng.uniform() > 0.5 -> CHW float.
Here `decode` does the uint8 part (cacheable, exact) and `normalize` the float part on a
whole batch on the training device; flipping before or after normalisation is identical.
"""
import os

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from common.data import loader_kwargs, open_image

MEAN = (0.486, 0.459, 0.408)  # upstream's values, not ImageNet's
STD = (0.229, 0.224, 0.225)


def decode(path: str, h: int, w: int, skip: bool = False):
    """uint8 HWC RGB at (h, w), resized with cv2 INTER_LINEAR like upstream; None if skipped."""
    im = open_image(path, "RGB", skip=skip)
    if im is None:
        return None
    arr = np.asarray(im)
    if arr.shape[:2] != (h, w):
        arr = cv2.resize(arr, (w, h), interpolation=cv2.INTER_LINEAR)
    return arr


class ImageList(Dataset):
    """uint8 CHW images by index. An item may be an int or an (index, flip) pair: flips are
    drawn by the sampler so that data order and augmentation are a function of seed+epoch."""

    def __init__(self, img_dir: str, names, h: int, w: int, skip_bad_images: bool = False):
        self.img_dir, self.names, self.h, self.w = img_dir, list(names), int(h), int(w)
        self.skip = skip_bad_images

    def __len__(self):
        return len(self.names)

    def __getitem__(self, item):
        index, flip = (item, False) if isinstance(item, (int, np.integer)) else (int(item[0]), bool(item[1]))
        arr = decode(os.path.join(self.img_dir, self.names[index]), self.h, self.w, self.skip)
        if arr is None:
            return None
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))), index, flip


def collate(batch):
    """Stack (image, index, flip) samples, dropping skipped (None) ones; None if all were skipped."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    ims, idx, flips = zip(*batch)
    return torch.stack(ims), torch.tensor(idx, dtype=torch.long), torch.tensor(flips, dtype=torch.bool)


def load_all(images: ImageList, workers: int, batch_size: int = 64):
    """Decode every image once into one uint8 tensor [N,3,H,W]; returns (tensor, kept mask).
    Skipped bad images stay as zeros with kept=False."""
    n = len(images)
    store = torch.zeros((n, 3, images.h, images.w), dtype=torch.uint8)
    kept = torch.zeros(n, dtype=torch.bool)
    kw = loader_kwargs(workers, torch.device("cpu"))
    kw.pop("persistent_workers", None)
    loader = DataLoader(images, batch_size=batch_size, shuffle=False, collate_fn=collate, **kw)
    for out in loader:
        if out is None:
            continue
        ims, idx, _ = out
        store[idx] = ims
        kept[idx] = True
    return store, kept


def normalize(ims_uint8: torch.Tensor, flips: torch.Tensor | None, device: torch.device,
              channels_last: bool = False) -> torch.Tensor:
    """uint8 [N,3,H,W] -> float32 normalised on `device`, flipped where `flips` is True."""
    x = ims_uint8.to(device, non_blocking=True)
    if flips is not None and bool(flips.any()):
        f = flips.to(device).view(-1, 1, 1, 1)
        x = torch.where(f, x.flip(-1), x)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255.0
    x = (x.float() - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x

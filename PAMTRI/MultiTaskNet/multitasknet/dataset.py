"""Channel assembly: RGB + 36 heatmaps and/or 13 segment masks, stretched to the image size.

A sample is (stack uint8 H x W x C, vid, camid, colour, type, keypoints (108,) float32).
C = 3, 39 (heatmaps), 16 (segments) or 52 (both), ordered RGB, heatmaps 00..35, segments 00..12.
"""
import os
import random
import sys

import cv2
import numpy as np
import torch

from common.data import BadImageError, loader_kwargs
from common.errors import UserError

from . import transforms as T
from .veri import NUM_HEATMAPS, NUM_SEGMENTS, Split, segment_gate


def num_channels(heatmaps: bool, segments: bool) -> int:
    return 3 + NUM_HEATMAPS * bool(heatmaps) + NUM_SEGMENTS * bool(segments)


def channel_flags(in_channels: int) -> tuple[bool, bool]:
    """(heatmaps, segments) for a first-conv width."""
    table = {3: (False, False), 3 + NUM_HEATMAPS: (True, False), 3 + NUM_SEGMENTS: (False, True),
             3 + NUM_HEATMAPS + NUM_SEGMENTS: (True, True)}
    if in_channels not in table:
        raise UserError(f"checkpoint first conv takes {in_channels} channels; expected 3, 39, 16 or 52")
    return table[in_channels]


JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"


def decode_checked(path, flags):
    """cv2.imread, except that a damaged file is None instead of an image.

    cv2.imread decodes a truncated JPEG without an error, filling the missing rows with grey
    (libjpeg only warns). So the bytes are read once, a JPEG must have its end-of-image marker
    after its last start-of-scan marker (trailing bytes after it are tolerated), and the same
    bytes go to cv2.imdecode: the pixels are exactly those of cv2.imread, upstream's reader.
    Returns (image or None, reason)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, "missing" if not os.path.exists(path) else "unreadable"
    if data[:2] == b"\xff\xd8" and data.rfind(JPEG_EOI) < max(data.rfind(JPEG_SOS), 2):
        return None, "truncated JPEG: no end-of-image marker"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    return img, (None if img is not None else "not a decodable image")


def _read(path, flags, skip):
    img, reason = decode_checked(path, flags)
    if img is None:
        if skip:
            print(f"[Warning] skipped sample: bad image {path} ({reason})", file=sys.stderr, flush=True)
            return None
        raise BadImageError(f"cannot read image {path} ({reason}) (use --skip_bad_images to skip such samples)")
    return img


class VeRiDataset(torch.utils.data.Dataset):
    """`items` are plain indices (test) or (index, augmentation seed) pairs from the sampler (train)."""

    def __init__(self, split: Split, heatmaps=False, segments=False, train=False, width=256, height=256,
                 skip_bad_images=False):
        self.split = split
        self.heatmaps, self.segments = bool(heatmaps), bool(segments)
        self.train = train
        self.width, self.height = width, height
        self.skip = skip_bad_images
        self.channels = num_channels(heatmaps, segments)

    def __len__(self):
        return len(self.split)

    def load_stack(self, index: int):
        """Original-size H x W x C uint8 stack, or None for a skipped bad file."""
        s = self.split
        name = s.names[index]
        bgr = _read(os.path.join(s.image_dir, name), cv2.IMREAD_COLOR, self.skip)
        if bgr is None:
            return None
        h, w = bgr.shape[:2]
        stack = np.empty((h, w, self.channels), dtype=np.uint8)
        stack[:, :, :3] = bgr[:, :, ::-1]
        c = 3
        stem = os.path.splitext(name)[0]
        if self.heatmaps:
            folder = os.path.join(s.heatmap_dir, stem)
            for j in range(NUM_HEATMAPS):
                hm = _read(os.path.join(folder, f"{j:02d}.jpg"), cv2.IMREAD_GRAYSCALE, self.skip)
                if hm is None:
                    return None
                stack[:, :, c + j] = cv2.resize(hm, (w, h), interpolation=cv2.INTER_LINEAR)
            c += NUM_HEATMAPS
        if self.segments:
            folder = os.path.join(s.segment_dir, stem)
            gate = segment_gate(s.keypoints[index, :, 2])
            for j in range(NUM_SEGMENTS):
                if not gate[j]:
                    stack[:, :, c + j] = 0  # a low-confidence corner: the file is not even read
                    continue
                seg = _read(os.path.join(folder, f"{j:02d}.jpg"), cv2.IMREAD_GRAYSCALE, self.skip)
                if seg is None:
                    return None
                stack[:, :, c + j] = cv2.resize(seg, (w, h), interpolation=cv2.INTER_LINEAR)
        return stack

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, None)
        stack = self.load_stack(index)
        if stack is None:
            return None
        s = self.split
        # A private copy: upstream scaled the stored keypoints in place, compounding over epochs.
        keypts = s.keypoints[index].copy()
        if self.train:
            stack, keypts = T.train_transform(stack, keypts, self.width, self.height, random.Random(seed))
        else:
            stack, keypts = T.test_transform(stack, keypts, self.width, self.height)
        return (stack, int(s.vids[index]), int(s.camids[index]), int(s.colors[index]), int(s.types[index]),
                T.keypoint_vector(keypts, self.width, self.height))


def worker_init(_worker_id):
    """One OpenCV/torch thread per loader worker: the workers already run in parallel."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def loader_options(workers: int, device) -> dict:
    kw = loader_kwargs(workers, device)
    if workers > 0:
        kw["worker_init_fn"] = worker_init
    return kw


def collate(batch):
    """Stack to uint8 N x C x H x W whose memory is already channels_last (N,H,W,C), so the
    host->device copy needs no transpose. Drops skipped (None) samples."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    imgs = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2)
    cols = list(zip(*[b[1:5] for b in batch]))
    vids, camids, colors, types = (torch.as_tensor(c, dtype=torch.int64) for c in cols)
    keypts = torch.from_numpy(np.stack([b[5] for b in batch]))
    return imgs, vids, camids, colors, types, keypts

"""Joint image + keypoint transforms of MultiTaskNet, on H x W x C uint8 stacks.

Every channel (RGB, 36 heatmaps, 13 segments) goes through the same resize/crop/flip.
Keypoints are an (36, 3) array (x, y, c); x, y follow the image, c is never touched.
The random draws come from an `rng` with Python's random API (`uniform`, `random`), one per
sample, so augmentation is reproducible from the sampler's seeds.

ToTensor and Normalize are applied on the device (see `Normalizer`): the loader ships uint8,
a quarter of the bytes of float32 for 52-channel inputs.
"""
import cv2
import numpy as np
import torch

RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
# Heatmap and segment channels use the average of the RGB statistics.
EXTRA_MEAN = 0.449
EXTRA_STD = 0.226


def resize(stack: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2 bilinear resize that keeps a trailing channel axis of any length."""
    out = cv2.resize(stack, (width, height), interpolation=cv2.INTER_LINEAR)
    return out if out.ndim == 3 else out[:, :, None]


def resize_with_keypoints(stack, keypts, width, height):
    h, w = stack.shape[:2]
    keypts = keypts.copy()
    keypts[:, 0] *= width / w
    keypts[:, 1] *= height / h
    return resize(stack, width, height), keypts


def random_2d_translation(stack, keypts, width, height, rng, p=0.5):
    """With probability 1-p resize to (width, height); else resize to 1.125x and crop a random
    (width, height) window, moving the keypoints with it."""
    if rng.uniform(0, 1) > p:
        return resize_with_keypoints(stack, keypts, width, height)
    new_w, new_h = int(round(width * 1.125)), int(round(height * 1.125))
    big, keypts = resize_with_keypoints(stack, keypts, new_w, new_h)
    x1 = int(round(rng.uniform(0, new_w - width)))
    y1 = int(round(rng.uniform(0, new_h - height)))
    keypts[:, 0] -= x1
    keypts[:, 1] -= y1
    return np.ascontiguousarray(big[y1:y1 + height, x1:x1 + width]), keypts


def random_horizontal_flip(stack, keypts, rng, p=0.5):
    """Mirror all channels; x -> width-1-x. Upstream swaps no left/right keypoints or channels."""
    if rng.random() < p:
        keypts = keypts.copy()
        keypts[:, 0] = stack.shape[1] - 1 - keypts[:, 0]
        flipped = cv2.flip(stack, 1)
        stack = flipped if flipped.ndim == 3 else flipped[:, :, None]
    return stack, keypts


def train_transform(stack, keypts, width, height, rng):
    stack, keypts = random_2d_translation(stack, keypts, width, height, rng)
    return random_horizontal_flip(stack, keypts, rng)


def test_transform(stack, keypts, width, height):
    return resize_with_keypoints(stack, keypts, width, height)


def keypoint_vector(keypts, width, height) -> np.ndarray:
    """(108,) float32 x0,y0,c0,...: x/width-0.5, y/height-0.5, c-0.5, after the transform."""
    out = np.asarray(keypts, dtype=np.float32).copy()
    out[:, 0] = out[:, 0] / width - 0.5
    out[:, 1] = out[:, 1] / height - 0.5
    out[:, 2] = out[:, 2] - 0.5
    return out.reshape(-1)


def channel_stats(num_channels: int) -> tuple[list, list]:
    extra = num_channels - 3
    return list(RGB_MEAN) + [EXTRA_MEAN] * extra, list(RGB_STD) + [EXTRA_STD] * extra


class Normalizer(torch.nn.Module):
    """uint8 N x C x H x W -> float32 (x/255 - mean)/std, on whatever device the batch is on."""

    def __init__(self, num_channels: int):
        super().__init__()
        mean, std = channel_stats(num_channels)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - self.mean) / self.std

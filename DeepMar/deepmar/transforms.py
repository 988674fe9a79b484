"""Input pipeline of train.py / eval.py: the input size, the per-image transform and the batch flip."""
import torch
import torchvision.transforms as T

from common.cli import parse_int_tuple

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def parse_resize(text):
    """'(h,w)' or 'n' -> (h, w)."""
    size = parse_int_tuple(text, "--resize")
    return size * 2 if len(size) == 1 else size


def build_transform(resize):
    """PIL resize to exactly (h, w) (no crop, aspect not kept), then ImageNet normalisation.

    The training flip is not here: `random_hflip` applies it to the batch in the main
    process, so every random draw of an epoch comes from the (seed, epoch)-seeded generator
    and a resumed run repeats it exactly, whatever the loader workers did before."""
    return T.Compose([T.Resize(tuple(resize), interpolation=T.InterpolationMode.BILINEAR),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def random_hflip(x, p=0.5, generator=None):
    """Flip each image of an NCHW batch with probability p. Same distribution as upstream's
    RandomHorizontalFlip after Resize: flipping commutes with the per-pixel normalisation."""
    flip = torch.rand(x.shape[0], generator=generator) < p
    if flip.any():
        x = x.clone()
        x[flip] = x[flip].flip(-1)
    return x

"""The training augmentation: RandomHorizontalFlip(0.5), drawn on the device per batch."""
import torch


def flip_mask(batch, seed, epoch, step, device):
    """RandomHorizontalFlip(0.5) decisions for one batch, a function of (seed, epoch, step, rank via
    seed) so a resumed run flips exactly as an uninterrupted one."""
    g = torch.Generator().manual_seed((seed * 1000003 + epoch) * 1000003 + step)
    return (torch.rand(batch, generator=g) < 0.5).to(device)


def hflip_where(x, mask):
    return torch.where(mask.view(-1, 1, 1, 1), torch.flip(x, [3]), x)

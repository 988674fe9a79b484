"""The DenseNet backbone of MultiTaskNet: sizes as data and torchvision's `features` module.
(Its ImageNet weights are read in checkpoints.py.)"""
import torchvision
from torch import nn

from common.errors import UserError

# Backbone configs as data. `densenet121` is upstream's; `densenet_tiny` keeps the same
# structure at a toy size for tests and CPU demos (its weights fit no upstream checkpoint).
ARCHS = {
    "densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                        vid_dim=1024, attr_dim=512),
    "densenet_tiny": dict(growth_rate=8, block_config=(1, 1, 1, 1), num_init_features=16, bn_size=2,
                          vid_dim=64, attr_dim=32),
}


def densenet_features(arch: str) -> tuple[nn.Sequential, int]:
    """torchvision DenseNet `features` (conv0 .. norm5, no final ReLU) of `arch` and its output width."""
    if arch not in ARCHS:
        raise UserError(f"unknown --arch {arch}, expected one of {', '.join(ARCHS)}")
    cfg = ARCHS[arch]
    densenet = torchvision.models.DenseNet(growth_rate=cfg["growth_rate"], block_config=cfg["block_config"],
                                           num_init_features=cfg["num_init_features"], bn_size=cfg["bn_size"])
    return densenet.features, densenet.classifier.in_features

"""Real-size model: upstream key list and parameter count; tiny model: output shapes."""
import torch
from aligned_reid.model import AlignedReID

from common.testing import state_dict_rows, upstream_keys


def test_resnet50_keys_and_shapes_match_upstream():
    model = AlignedReID(num_classes=751, arch="resnet50")
    ours = state_dict_rows(model.state_dict())
    assert ours == upstream_keys("alignedreid_resnet50_751ids")  # the list ships with the repo: never skipped
    assert ours[-2:] == [("fc.weight", "(751, 2048)"), ("fc.bias", "(751,)")]
    assert ("local_conv.weight", "(128, 2048, 1, 1)") in ours


def test_resnet50_parameter_count():
    model = AlignedReID(num_classes=751, arch="resnet50")
    # ResNet-50 without fc 23,508,032 + local conv 262,272 + local bn 256 + fc 1,538,799
    assert sum(p.numel() for p in model.parameters()) == 25_309_359
    assert model.fc.bias.abs().sum().item() == 0
    assert 0.0005 < model.fc.weight.std().item() < 0.0015  # N(0, 0.001^2)


def test_tiny_forward_shapes_and_width_average():
    torch.manual_seed(0)
    model = AlignedReID(num_classes=5, arch="tiny").eval()
    g, loc, logits = model(torch.randn(2, 3, 64, 32))
    assert g.shape == (2, 128) and loc.shape == (2, 2, 128) and logits.shape == (2, 5)
    # stripes are rows of the map: a 256x128 input gives 8 of them
    assert model(torch.randn(1, 3, 256, 128))[1].shape == (1, 8, 128)

"""Real-size models: upstream state_dict keys, shapes and parameter counts (spec 3.3, keys/)."""
import pytest
import torch
from face_arcface.arcface import Arcface
from face_arcface.lr_schedule import lr_at_epoch
from face_arcface.model import build_backbone
from face_arcface.optimizer import param_groups

from common.sampling import EpochSampler
from common.testing import upstream_keys

CASES = [  # (mode, depth, keys file, trainable parameters, state_dict entries) from the spec
    ("ir", 50, "insightface_ir50", 43_574_976, 349),
    ("ir_se", 50, "insightface_ir_se50", 43_797_696, 397),
    ("ir", 100, "insightface_ir100", 65_129_792, 674),
    ("ir_se", 100, "insightface_ir_se100", 65_502_016, 772),
    ("ir", 152, "insightface_ir152", 70_737_600, 687),
    ("ir_se", 152, "insightface_ir_se152", 71_148_736, 787),
    ("mobilefacenet", 100, "insightface_mobilefacenet", 1_200_512, 333),
]


def read_keys(name):
    """The upstream (key, shape) rows, kept in the repo (common/testing/keys)."""
    return upstream_keys(name)


@pytest.mark.parametrize("mode,depth,keys,params,entries", CASES)
def test_keys_shapes_and_counts(mode, depth, keys, params, entries):
    with torch.device("meta"):  # full-size construction without allocating memory
        model = build_backbone(mode, depth)
    sd = model.state_dict()
    assert [(k, str(tuple(v.shape))) for k, v in sd.items()] == read_keys(keys)
    assert len(sd) == entries
    assert sum(p.numel() for p in model.parameters()) == params


def test_port_model_on_cpu_loads_strictly_with_module_prefix():
    from common.checkpoint import load_state_dict_checked

    model = build_backbone("ir_se", 100)
    state = {"module." + k: v.clone() for k, v in model.state_dict().items()}
    other = build_backbone("ir_se", 100)
    load_state_dict_checked(other, state)
    assert torch.equal(other.body[46].shortcut_layer[0].weight, model.body[46].shortcut_layer[0].weight)
    assert isinstance(model.body[45].shortcut_layer, torch.nn.MaxPool2d)  # conv shortcuts at 3/16/46 only


def test_emore_head_size():
    with torch.device("meta"):
        head = Arcface(512, 85742)
    assert list(head.state_dict()) == ["kernel"] and head.kernel.numel() == 43_899_904


def test_weight_decay_split():
    with torch.device("meta"):
        model, head = build_backbone("ir_se", 50), Arcface(512, 10)
    decay, no_decay = param_groups(model, head, "ir_se")
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (5e-4, 0.0)
    d, n = {id(p) for p in decay["params"]}, {id(p) for p in no_decay["params"]}
    names = {id(p): k for k, p in model.named_parameters()}
    # BatchNorm weights/biases (keys whose module has running_mean) and nothing else escape decay
    bn_modules = {k.rsplit(".", 1)[0] for k, _ in read_keys("insightface_ir_se50") if k.endswith("running_mean")}
    assert {names[i] for i in n} == {f"{m}.{p}" for m in bn_modules for p in ("weight", "bias")}
    for key in ("input_layer.2.weight", "body.0.res_layer.2.weight", "body.0.res_layer.5.fc1.weight",
                "output_layer.3.bias"):  # PReLU, SE conv and FC bias keep weight decay
        assert id(dict(model.named_parameters())[key]) in d
    assert id(head.kernel) in d
    with torch.device("meta"):
        mfn = build_backbone("mobilefacenet")
    groups = param_groups(mfn, head, "mobilefacenet")
    assert [g["weight_decay"] for g in groups] == [4e-5, 4e-4, 0.0]
    assert groups[1]["params"][0] is mfn.linear.weight and groups[1]["params"][1] is head.kernel


def test_lr_milestones():
    lrs = [lr_at_epoch(1.0, e) for e in range(20)]
    assert lrs[:12] == [1.0] * 12
    assert lrs[12:15] == pytest.approx([0.1] * 3)
    assert lrs[15:18] == pytest.approx([0.01] * 3)
    assert lrs[18:] == pytest.approx([0.001] * 2)


def test_sampler_equal_shards_deterministic_and_resumable():
    a, b = EpochSampler(11, world_size=2, rank=0, seed=5), EpochSampler(11, world_size=2, rank=1, seed=5)
    a.set_epoch(3)
    b.set_epoch(3)
    ia, ib = list(a), list(b)
    assert len(ia) == len(ib) == 6 and set(ia) | set(ib) == set(range(11))
    again = EpochSampler(11, world_size=2, rank=0, seed=5)
    again.set_epoch(3, start=4)
    assert list(again) == ia[4:]
    a.set_epoch(4)
    assert list(a) != ia

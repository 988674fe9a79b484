"""Every file DeepMar reads is data: checkpoints through common.checkpoint.load (weights_only),
dataset pickles through common.safe_pickle. Malicious files never run; upstream layouts load.

Most calls are in-process (`main(argv)`): a user error is `Error: <one line>` on stderr, exit 1."""
import argparse
import random
import re

import numpy as np
import pytest
import torch
from deepmar.model import DeepMAR, load_imagenet_backbone

from common import testing

from .conftest import MODEL_DIR, OUTPUT, fresh_output, load_cli, run_script

train = load_cli("train")
evaluate = load_cli("eval")
export = load_cli("export")
bench_loader = load_cli("tools/bench_loader")

TINY = ["--arch=resnet50_tiny", "--resize=(64,64)", "--workers=0"]


def train_args(data, exp, *extra):
    return [f"--save_dir={data}", f"--exp_dir={exp}", *TINY, "--batch_size=32", "--total_epochs=1", "--max_steps=1",
            "--seed=3", "--eval_batch_size=80", "--steps_per_log=1", *extra]


def one_line_error(capsys, main, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("Error: ") and err.count("\n") == 1, err
    return err


# ----------------------------------------------------------------------------- malicious files
# every path by which DeepMar loads a checkpoint: (name, how the file is shaped, argv builder).
# `f` is the malicious file, `d` the data, `e` the run folder (exp_dir), `t` a scratch folder
RUN_CKPT = "model/checkpoint.path.tar"  # where the run's own checkpoint lives, under the exp_dir
LOAD_PATHS = [
    ("eval.py --pth_path", lambda p: {"state_dicts": [{"base.conv1.weight": p}, {}], "ep": 1, "scores": 0},
     None, lambda f, d, e, t: (evaluate.main, [f"--save_dir={d}", f"--pth_path={f}", "--workers=0"])),
    ("export.py --pth_path", lambda p: {"epoch": 1, "state_dict": p, "optimizer": {}},
     None, lambda f, d, e, t: (export.main, [f"--pth_path={f}", f"--output={t}/x.onnx"])),
    ("train.py --resume PATH", lambda p: {"deepmar_args": {}, "epoch": 1, "model": p},
     None, lambda f, d, e, t: (train.main, train_args(d, e, f"--resume={f}"))),
    ("train.py --resume --ckpt_file PATH", lambda p: {"state_dicts": [p, {}], "ep": 1},
     None, lambda f, d, e, t: (train.main, train_args(d, e, "--resume", f"--ckpt_file={f}"))),
    ("train.py --resume (the run folder's checkpoint)", lambda p: {"deepmar_args": {}, "epoch": 1, "model": p},
     RUN_CKPT, lambda f, d, e, t: (train.main, train_args(d, e, "--resume"))),
    ("train.py after a torchrun restart (automatic resume)", lambda p: {"deepmar_args": {}, "epoch": 1, "model": p},
     RUN_CKPT, lambda f, d, e, t: (train.main, train_args(d, e))),
    ("train.py --load_model_weight --model_weight_file", lambda p: {"state_dicts": [p, {}], "ep": 1},
     None, lambda f, d, e, t: (train.main, train_args(d, e, "--load_model_weight", f"--model_weight_file={f}"))),
    ("train.py --test_only --model_weight_file", lambda p: {"state_dicts": [p, {}], "ep": 1},
     None, lambda f, d, e, t: (train.main, train_args(d, e, "--test_only", f"--model_weight_file={f}"))),
    ("train.py --pretrained_path", lambda p: {"conv1.weight": p, "fc.weight": p},
     None, lambda f, d, e, t: (train.main, train_args(d, e, f"--pretrained_path={f}"))),
]


@pytest.mark.parametrize("name,wrap,place,call", LOAD_PATHS, ids=[p[0] for p in LOAD_PATHS])
def test_malicious_checkpoint_never_runs(name, wrap, place, call, small_data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    marker = tmp_path / "MARKER"
    path = exp / place if place else tmp_path / "evil.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    testing.malicious_checkpoint(path, marker, wrap)
    if "restart" in name:
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    main, argv = call(path, small_data, exp, tmp_path)
    err = one_line_error(capsys, main, argv)
    assert not marker.exists()
    assert "refused to load" in err and str(path) in err and "system" in err and "code, not data" in err


@pytest.mark.e2e
def test_malicious_checkpoint_through_the_eval_script(small_data, tmp_path):
    """Through the script, as its default checkpoint (the device's full run's, no --pth_path given)."""
    marker = tmp_path / "MARKER"
    out = fresh_output(44)
    (out / "exp" / "model").mkdir(parents=True)
    default = testing.malicious_checkpoint(out / "exp" / RUN_CKPT, marker)
    r = run_script("train_eval_1p.sh", f"--data_path={small_data}", "--device_id=44")
    assert r.returncode == 1 and r.stderr == f"Error: refused to load checkpoint (--pth_path) {default}: " \
        "it needs posix.system, which is code, not data; checkpoints are loaded as data (weights_only=True) and " \
        "never run code (re-save the weights from a trusted source as a dict of tensors)\n"
    assert not marker.exists()
    assert not list(out.glob("*_eval.log"))  # no summary for a refused run


def data_with(tmp_path, small_data, name, write):
    """A PETA folder whose `name` pickle is replaced (images linked, the other pickle copied)."""
    data = tmp_path / "peta"
    data.mkdir()
    (data / "images").symlink_to(small_data / "images")
    for pkl in ("peta_dataset.pkl", "peta_partition.pkl"):
        if pkl != name:
            (data / pkl).write_bytes((small_data / pkl).read_bytes())
    write(data / name)
    return data


def tiny_weights(path):
    torch.save(DeepMAR(35, "resnet50_tiny").state_dict(), path)
    return path


READERS = [
    ("train.py", lambda d, t: (train.main, train_args(d, t / "exp"))),
    ("eval.py", lambda d, t: (evaluate.main, [f"--save_dir={d}", f"--pth_path={tiny_weights(t / 'w.pth')}",
                                              "--workers=0"])),
    ("tools/bench_loader.py", lambda d, t: (bench_loader.main, [f"--save_dir={d}", "--workers=0", "--batches=1"])),
]


@pytest.mark.parametrize("pkl", ["peta_dataset.pkl", "peta_partition.pkl"])
@pytest.mark.parametrize("reader,call", READERS, ids=[r[0] for r in READERS])
def test_malicious_dataset_pickle_never_runs(reader, call, pkl, small_data, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    # protocol 0: what upstream's Python 2 cPickle wrote
    data = data_with(tmp_path, small_data, pkl,
                     lambda p: testing.malicious_pickle(p, marker, lambda x: {"image": ["00001.png"], "att": x}, 0))
    main, argv = call(data, tmp_path)
    err = one_line_error(capsys, main, argv)
    assert not marker.exists()
    assert err.startswith(f"Error: refused to load dataset pickle {data / pkl}: it references posix.system")


# ----------------------------------------------------------------------------- wrong shapes
def pickle_bytes(obj):
    import pickle

    return pickle.dumps(obj, protocol=2)


WRONG_PICKLES = [
    ("peta_dataset.pkl", 5, "dataset pickle {path}: the file holds a int, expected a dict"),
    ("peta_dataset.pkl", {"image": ["00001.png"], "att": 7, "att_name": [], "selected_attribute": [0]},
     "dataset pickle {path}: key 'att' holds a int, expected a list or tuple or range or ndarray"),
    ("peta_dataset.pkl", {"image": ["00001.png"], "att": [[1, 0]], "att_name": [], "selected_attribute": [5]},
     "dataset pickle {path}: key 'selected_attribute' does not hold the upstream layout: indices outside 0..1"),
    ("peta_partition.pkl", {"train": [[0]], "val": [[0]], "test": 3, "trainval": [[0]]},
     "dataset pickle {path}: key 'test' holds a int, expected a list or tuple or range or ndarray"),
]


@pytest.mark.parametrize("pkl,obj,message", WRONG_PICKLES, ids=["int", "att int", "selected range", "split int"])
def test_dataset_pickle_of_the_wrong_shape_is_one_line(pkl, obj, message, small_data, tmp_path, capsys):
    data = data_with(tmp_path, small_data, pkl, lambda p: p.write_bytes(pickle_bytes(obj)))
    err = one_line_error(capsys, train.main, train_args(data, tmp_path / "exp"))
    assert err == "Error: " + message.format(path=data / pkl) + "\n"


def test_files_of_the_wrong_shape_are_one_line(small_data, tmp_path, capsys):
    lst = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], lst)
    err = one_line_error(capsys, train.main, train_args(small_data, tmp_path / "exp", f"--pretrained_path={lst}"))
    assert err == f"Error: pretrained weights (--pretrained_path) {lst} holds a list, expected a dict (a state_dict " \
        "or a checkpoint with one)\n"
    err = one_line_error(capsys, evaluate.main, [f"--save_dir={small_data}", f"--pth_path={lst}"])
    assert err.startswith(f"Error: checkpoint {lst} holds a list: no DeepMar state_dict")
    other = tmp_path / "other.pth"
    torch.save({"state_dict": torch.nn.Linear(3, 2).state_dict()}, other)
    err = one_line_error(capsys, evaluate.main, [f"--save_dir={small_data}", f"--pth_path={other}", "--workers=0",
                                                 "--arch=resnet50_tiny"])
    assert "does not fit this model" in err
    foreign = tmp_path / "foreign.pth"
    torch.save({"foo": 1}, foreign)
    err = one_line_error(capsys, train.main, train_args(small_data, tmp_path / "exp", f"--resume={foreign}"))
    assert err.startswith(f"Error: {foreign} is not a DeepMar checkpoint to resume from")


# ----------------------------------------------------------------------------- upstream layouts
def upstream_files(folder):
    """One file per layout of the spec (DeepMar.md 3), safe types only, all with the same weights:
    DM ckpt_epoch (torch 0.3: no num_batches_tracked, optimizer state keyed by id()), AZ 8p
    ckpt_epoch (module.), AZ checkpoint.path.tar (+ apex amp state), a bare state_dict."""
    torch.manual_seed(11)
    model = DeepMAR(35, "resnet50_tiny")
    for m in model.modules():  # non-trivial BN statistics, so a lost buffer would change the metric
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = model.state_dict()
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    finetuned, new = model.param_groups()
    ids = [140_000_000_000 + 8 * i for i in range(len(finetuned) + len(new))]
    group = {"lr": 0.001, "momentum": 0.9, "dampening": 0, "weight_decay": 0.0005, "nesterov": False}
    optim = {"state": {i: {"momentum_buffer": torch.full_like(p, 0.01)} for i, p in zip(ids, finetuned + new)},
             "param_groups": [dict(group, params=ids[:len(finetuned)]), dict(group, params=ids[len(finetuned):])]}
    module = {"module." + k: v for k, v in sd.items()}
    files = {
        "dm_ckpt_epoch1.pth": {"state_dicts": [old, optim], "ep": 1, "scores": 0},
        "az_8p_ckpt_epoch1.pth": {"state_dicts": [module, optim], "ep": 1, "scores": 0},
        "az_checkpoint.path.tar": {"epoch": 1, "state_dict": module, "optimizer": optim,
                                   "amp": {"loss_scaler0": {"loss_scale": 512.0, "unskipped": 0}}},
        "state_dict.pth": old,
    }
    for name, obj in files.items():
        torch.save(obj, folder / name)
        torch.load(folder / name, weights_only=True)  # safe types only
    return {name: folder / name for name in files}, sd


def instance_acc(text):
    return re.findall(r"^ Acc: ([0-9.]+),", text, re.M)


@pytest.mark.e2e
def test_upstream_layouts_evaluate_alike(small_data, tmp_path, capsys):
    files, _ = upstream_files(tmp_path)
    accs = {}
    for name, path in files.items():
        evaluate.main([f"--save_dir={small_data}", f"--pth_path={path}", "--workers=0", "--resize=(64,64)"])
        accs[name] = instance_acc(capsys.readouterr().out)
    assert all(len(a) == 1 for a in accs.values()) and len(set(map(tuple, accs.values()))) == 1, accs
    # the same weights through train.py --test_only --model_weight_file (upstream's test path)
    dm_file = files["dm_ckpt_epoch1.pth"]
    train.main(train_args(small_data, tmp_path / "exp", "--test_only", f"--model_weight_file={dm_file}"))
    assert instance_acc(capsys.readouterr().out) == accs["dm_ckpt_epoch1.pth"]


@pytest.mark.parametrize("name", ["dm_ckpt_epoch1.pth", "az_checkpoint.path.tar"])
def test_upstream_layouts_resume(name, small_data, tmp_path, capsys):
    files, _ = upstream_files(tmp_path)
    # 120 trainval images / 32 = 3 steps per epoch: epoch 1 is done, one step of epoch 2 runs
    train.main(train_args(small_data, tmp_path / "exp", f"--resume={files[name]}", "--total_epochs=2",
                          "--max_steps=4"))
    out = capsys.readouterr().out
    layout = "upstream ckpt_epoch" if name.startswith("dm") else "Ascend checkpoint.path.tar"
    assert f"resumed from {files[name]} at the end of epoch 1 ({layout} layout" in out
    assert " in Ep 1," not in out and re.search(r", Step 1/3 in Ep 2, ", out)
    assert "stopped after --max_steps 4" in out


def test_earlier_project_checkpoint_resumes(small_data, tmp_path, capsys):
    """A checkpoint.path.tar of an earlier version: numpy RNG tuple, flags as a Namespace."""
    model = DeepMAR(35, "resnet50_tiny")
    finetuned, new = model.param_groups()
    opt = torch.optim.SGD([{"params": finetuned}, {"params": new}], lr=0.01, momentum=0.9)
    flags = train.get_parser().parse_args(train_args(small_data, tmp_path / "exp"))
    old = {"deepmar_args": argparse.Namespace(**vars(flags)), "seed": 3, "epoch": 1, "global_step": 3,
           "model": model.state_dict(), "optimizer": opt.state_dict(), "amp": {},
           "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}}
    path = tmp_path / "old.tar"
    torch.save(old, path)
    train.main(train_args(small_data, tmp_path / "exp", f"--resume={path}", "--total_epochs=2", "--max_steps=4"))
    out = capsys.readouterr().out
    assert f"resumed from {path} at the end of epoch 1\n" in out and re.search(r", Step 1/3 in Ep 2, ", out)


def test_imagenet_backbone_file_loads(small_data, tmp_path, capsys):
    """torchvision's resnet50-19c8e357.pth layout: backbone keys without `base.`, plus fc.*."""
    torch.manual_seed(5)
    src = DeepMAR(35, "resnet50_tiny").base.state_dict()
    path = tmp_path / "resnet.pth"
    torch.save({**src, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, path)
    model = DeepMAR(35, "resnet50_tiny")
    assert load_imagenet_backbone(model, str(path)) == len(src)
    assert all(torch.equal(model.base.state_dict()[k], v) for k, v in src.items())
    train.main(train_args(small_data, tmp_path / "exp", f"--pretrained_path={path}"))
    assert f"loaded ImageNet backbone weights ({len(src)} tensors) from {path}" in capsys.readouterr().out


def test_no_unsafe_loader_left_in_the_model_folder():
    offenders = []
    for path in MODEL_DIR.rglob("*.py"):
        if "tests" in path.parts or OUTPUT in path.parents:
            continue
        text = path.read_text()
        if re.search(r"(?<![\w.])(torch\.load|pickle\.loads?|torch\.serialization\.load)\(|Unpickler", text):
            offenders.append(str(path.relative_to(MODEL_DIR)))
    assert offenders == []

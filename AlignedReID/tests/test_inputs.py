"""Bad and hostile input, in process (cheap): every load path refuses a file that would run code,
upstream checkpoint layouts still load, every numeric flag is checked when it is parsed, the
resume rules (recipe, stale temps), the batch arithmetic and the requirements files."""
import argparse
import collections
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from aligned_reid import weights
from aligned_reid.model import AlignedReID
from alignedreid_runs import MODEL_DIR, TINY, load_module

from common.errors import UserError
from common.testing import malicious_checkpoint, malicious_pickle

train = load_module("train.py")
evaluate = load_module("eval.py")
export = load_module("export.py")
transform = load_module("tools/transform_market1501.py")
METRIC = re.compile(r"^\[mAP: [0-9.]+%\], \[cmc1: [0-9.]+%\].*$", re.M)


def exits_with_one_line(capsys, fn, argv, *needles):
    """fn(argv) ends with exit status 1 and exactly one 'Error: ...' line naming `needles`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        fn(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


# ----------------------------------------------------------------------------- 9.1 files are data
def ar_ckpt(payload):
    return {"state_dicts": [{"base.conv1.weight": payload}, {}], "ep": 1, "scores": 0}


def resume_ckpt(payload):
    return {"state_dicts": [{}, {}], "ep": 1, "scores": 0, "aligned_reid": {"args": payload}}


def resnet_sd(payload):
    return {"conv1.weight": payload}


# every path of this model that loads a checkpoint: (name, wrap of the payload, argv builder, entry point)
LOAD_PATHS = [
    ("eval.py --pth_path FILE", ar_ckpt, lambda d, f, x: [f"--data_path={d}", f"--pth_path={f}"], "eval"),
    ("eval.py --pth_path FOLDER (its ckpt.pth)", ar_ckpt, lambda d, f, x: [f"--data_path={d}", f"--pth_path={x}"],
     "eval"),
    ("export.py --pth_path", ar_ckpt, lambda d, f, x: [f"--pth_path={f}", f"--output={x / 'm.onnx'}"], "export"),
    ("train.py --resume FILE", resume_ckpt, lambda d, f, x: [f"--data_path={d}", f"--resume={f}", *TINY], "train"),
    ("train.py --resume (bare: <exp_dir>/ckpt.pth)", resume_ckpt,
     lambda d, f, x: [f"--data_path={d}", f"--exp_dir={x}", "--resume", *TINY], "train"),
    ("train.py after a torchrun restart (automatic resume)", resume_ckpt,
     lambda d, f, x: [f"--data_path={d}", f"--exp_dir={x}", *TINY], "restart"),
    ("train.py --model_weight_file (start of training)", ar_ckpt,
     lambda d, f, x: [f"--data_path={d}", f"--model_weight_file={f}", f"--exp_dir={x}", *TINY], "train"),
    ("train.py --only_test --model_weight_file", ar_ckpt,
     lambda d, f, x: [f"--data_path={d}", "--only_test", f"--model_weight_file={f}", *TINY], "train"),
    ("train.py --pretrained_path", resnet_sd,
     lambda d, f, x: [f"--data_path={d}", f"--pretrained_path={f}", f"--exp_dir={x}", *TINY], "train"),
]


@pytest.mark.parametrize("what,wrap,argv,entry", LOAD_PATHS, ids=[p[0] for p in LOAD_PATHS])
def test_every_load_path_refuses_a_malicious_checkpoint(demo_data, tmp_path, capsys, monkeypatch, what, wrap,
                                                        argv, entry):
    marker = tmp_path / "ran"
    folder = tmp_path / "run"
    folder.mkdir()
    evil = malicious_checkpoint(folder / "ckpt.pth", marker, wrap=wrap)
    if entry == "restart":
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    fn = {"eval": evaluate.main, "export": export.main, "train": train.main, "restart": train.main}[entry]
    line = exits_with_one_line(capsys, fn, argv(demo_data, evil, folder), "refused to load", str(evil))
    assert re.search(r"it needs (posix|os)\.system, which is code", line)
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["train", "eval"])
def test_a_malicious_partitions_pickle_is_refused(demo_data, tmp_path, capsys, entry):
    data = tmp_path / "market1501"
    data.mkdir()
    (data / "images").symlink_to(demo_data / "images")
    marker = tmp_path / "ran"
    malicious_pickle(data / "other.pkl", marker, wrap=lambda payload: {"trainval_im_names": [payload]})
    if entry == "train":
        argv, fn = [f"--data_path={data}", "--pkl=other.pkl", f"--exp_dir={tmp_path / 'x'}", *TINY], train.main
    else:
        ckpt = tmp_path / "m.pth"
        torch.save(AlignedReID(4, "tiny").state_dict(), ckpt)
        argv, fn = [f"--data_path={data}", "--pkl=other.pkl", f"--pth_path={ckpt}"], evaluate.main
    exits_with_one_line(capsys, fn, argv, "refused to load partitions file", "other.pkl")
    assert not marker.exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["ori_to_new_im_name.pkl", "train_test_split.pkl"])
def test_transform_check_refuses_malicious_pickles(demo_data, tmp_path, capsys, name):
    data = tmp_path / "market1501"
    data.mkdir()
    for f in os.listdir(demo_data):
        (data / f).symlink_to(demo_data / f)
    (data / name).unlink()
    marker = tmp_path / "ran"
    malicious_pickle(data / name, marker)
    exits_with_one_line(capsys, transform.main, ["--check", str(data)], "refused to load", name)
    assert not marker.exists()


def _state(model):
    return collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())


@pytest.mark.e2e  # full_run: train_full_1p.sh in a subprocess
def test_upstream_layouts_and_ours_load(tmp_path, full_run, demo_data, capsys):
    """Spec 3: upstream ckpt.pth {'state_dicts': [model, adam], 'ep', 'scores'} (torch 0.3: no
    num_batches_tracked), the released plain model_weight.pth, Ascend's ckpt.pth (module. keys),
    {'state_dict': ...}; a checkpoint of an earlier version of this project (numpy RNG state,
    argparse.Namespace flags); torchvision ImageNet weights for --pretrained_path. And ours:
    eval.py in process reproduces the training run's metric lines exactly."""
    torch.manual_seed(0)
    model = AlignedReID(751, "tiny")
    sd = _state(model)
    old = collections.OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    adam = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=5e-4)
    model(torch.randn(4, 3, 64, 32))[0].sum().backward()
    adam.step()
    layouts = {
        "upstream ckpt.pth": {"state_dicts": [old, adam.state_dict()], "ep": 300, "scores": 0},
        "released model_weight.pth": old,
        "Ascend ckpt.pth (8p, module.)": {"state_dicts": [{"module." + k: v for k, v in old.items()},
                                                          adam.state_dict()], "ep": 300, "scores": 0},
        "{'state_dict': ...}": {"state_dict": sd},
        "earlier version of this project": {
            "state_dicts": [sd, adam.state_dict()], "ep": 1, "scores": 0,
            "aligned_reid": {"args": {"resize_h_w": (256, 128), "amp": False}, "arch": "tiny", "num_models": 1,
                             "seed": 1, "step_in_epoch": 0, "global_step": 23,
                             "rng": {"numpy": np.random.get_state(), "args": argparse.Namespace(a=1)}}},
    }
    for name, obj in layouts.items():
        path = tmp_path / "ckpt.pth"
        torch.save(obj, path)
        sds, meta = weights.read_checkpoint(str(path))
        fresh = AlignedReID(weights.num_classes(sds[0], path), "tiny")
        weights.load_weights(fresh, sds[0], name)
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in old.items()), name
        assert (meta.get("arch") == "tiny") == (name == "earlier version of this project")
    import torchvision

    imagenet = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18().state_dict(), imagenet)
    from aligned_reid.model import load_pretrained_backbone

    r18 = AlignedReID(751, "resnet18")
    load_pretrained_backbone(r18, str(imagenet))
    assert torch.equal(r18.base.conv1.weight, torch.load(imagenet, weights_only=True)["conv1.weight"])
    # ours: written by train.py as plain data; eval.py reproduces the run's metric lines
    ckpt = full_run.out / "train_full_1p" / "ckpt.pth"
    assert isinstance(torch.load(ckpt, weights_only=True)["aligned_reid"]["args"], dict)
    capsys.readouterr()
    evaluate.main([f"--data_path={demo_data}", f"--pth_path={ckpt}", "--workers=0"])
    assert METRIC.findall(capsys.readouterr().out) == METRIC.findall(full_run.log)


@pytest.mark.parametrize("content,needle", [
    ([1, 2, 3], "holds a list, expected a dict"),
    ({"state_dict": 7}, "holds a int, expected a dict"),
    ({"conv1.weight": [0.0] * 3}, "wrong-shape or non-tensor keys"),
])
def test_pretrained_path_of_the_wrong_shape_is_one_line(demo_data, tmp_path, capsys, content, needle):
    path = tmp_path / "pretrained.pth"
    torch.save(content, path)
    exits_with_one_line(capsys, train.main, [f"--data_path={demo_data}", f"--pretrained_path={path}",
                                             f"--exp_dir={tmp_path / 'x'}", *TINY], "--pretrained_path", needle)


@pytest.mark.parametrize("content,needle", [
    ([1, 2], "holds a list, expected a dict"),
    ({"state_dicts": 5, "ep": 1}, "is not an AlignedReID checkpoint"),
    ({"base.conv1.weight": torch.zeros(1), "fc.weight": [1.0]}, "has no fc.weight matrix"),
])
def test_checkpoints_of_the_wrong_shape_are_one_line(demo_data, tmp_path, capsys, content, needle):
    path = tmp_path / "ckpt.pth"
    torch.save(content, path)
    exits_with_one_line(capsys, evaluate.main, [f"--data_path={demo_data}", f"--pth_path={path}"], needle)
    exits_with_one_line(capsys, export.main, [f"--pth_path={path}"], needle)


# ----------------------------------------------------------------------------- 9.2 flags
TRAIN_FLAG_CASES = [
    ("--batch_size=0", "argument --batch_size: expected an integer >= 1, got 0"),
    ("--batch_size=-4", "argument --batch_size: expected an integer >= 1, got -4"),
    ("--batch_size=abc", "argument --batch_size: expected an integer >= 1, got 'abc'"),
    ("--total_epochs=0", "argument --total_epochs: expected an integer >= 1, got 0"),
    ("--max_steps=-2", "argument --max_steps: expected an integer >= 1, got -2"),
    ("--ids_per_batch=0", "argument --ids_per_batch: expected an integer >= 1"),
    ("--ims_per_id=0", "argument --ims_per_id: expected an integer >= 1"),
    ("--workers=-1", "argument -j/--workers: expected an integer >= 0"),
    ("--base_lr=-1", "argument --base_lr: expected a number > 0"),
    ("--base_lr=nan", "argument --base_lr: expected a number > 0"),
    ("--exp_decay_at_epoch=0", "argument --exp_decay_at_epoch: expected an integer >= 1"),
    ("--resize_h_w=0,64", "argument --resize_h_w: expected integers >= 1"),
    ("--resize_h_w=256", "argument --resize_h_w: expected 2 integers"),
    ("--eval_batch_size=0", "argument --eval_batch_size: expected an integer >= 1"),
    ("--num_models=0", "argument --num_models: expected an integer >= 1"),
    ("-gm=-0.1", "argument -gm/--global_margin: expected a number >= 0"),
    ("-llw=-1", "argument -llw/--l_loss_weight: expected a number >= 0"),
    ("--seed=-1", "argument --seed: expected an integer >= 0"),
    ("--log_steps=-1", "argument --log_steps: expected an integer >= 0"),
    ("--device_id=-1", "argument --device_id: expected an integer >= 0"),
    ("--npu=-1", "argument --npu: expected an integer >= 0"),
    ("--loss_scale=abc", "argument --loss_scale/--loss-scale: expected 'dynamic', -1 or a number > 0"),
    ("--crop_prob=2", "argument --crop_prob: expected a number in [0, 1]"),
    ("--staircase_decay_multiply_factor=0", "argument --staircase_decay_multiply_factor: expected a number > 0"),
    ("--staircase_decay_at_epochs=(0,5)", "argument --staircase_decay_at_epochs: expected integers >= 1"),
    ("--set_seed=maybe", "argument --set_seed: expected True/False or 1/0"),
]


@pytest.mark.parametrize("flag,needle", TRAIN_FLAG_CASES, ids=[c[0] for c in TRAIN_FLAG_CASES])
def test_train_flags_are_checked_when_parsed(tmp_path, capsys, flag, needle):
    exp = tmp_path / "exp"
    exits_with_one_line(capsys, train.main, ["--data_path=/nonexistent", f"--exp_dir={exp}", flag], needle)
    assert not exp.exists()  # nothing read or written


@pytest.mark.parametrize("fn,argv,needle", [
    ("eval", ["--eval_batch_size=0"], "argument --eval_batch_size/--batch_size: expected an integer >= 1"),
    ("eval", ["--batch_size=-1"], "argument --eval_batch_size/--batch_size: expected an integer >= 1"),
    ("eval", ["--workers=-2"], "argument -j/--workers: expected an integer >= 0"),
    ("eval", ["--resize_h_w=a,b"], "argument --resize_h_w: expected integers like (256,128)"),
    ("eval", ["-llw=-1"], "argument -llw/--l_loss_weight: expected a number >= 0"),
    ("export", ["--batch_size=0"], "argument --batch_size: expected an integer >= 1"),
    ("export", ["--opset=99"], "argument --opset: expected an integer in [9, 20]"),
    ("export", ["--tolerance=-1"], "argument --tolerance: expected a number >= 0"),
    ("transform", ["--raw_dir=x", "--save_dir=y", "--num_val_ids=-1"], "argument --num_val_ids"),
])
def test_eval_export_tool_flags_are_checked_when_parsed(capsys, fn, argv, needle):
    main = {"eval": evaluate.main, "export": export.main, "transform": transform.main}[fn]
    base = ["--data_path=/nonexistent", "--pth_path=/nonexistent.pth"] if fn == "eval" else \
        ["--pth_path=/nonexistent.pth"] if fn == "export" else []
    exits_with_one_line(capsys, main, base + argv, needle)


def test_batch_arithmetic_lives_in_one_place():
    """--batch_size (images per device, the scripts' key) <-> --ids_per_batch x --ims_per_id."""
    assert train.resolve_batch(None, None, 4) == (32, 128)  # upstream default: 32 ids x 4
    assert train.resolve_batch(None, 8, 4) == (8, 32)
    assert train.resolve_batch(32, None, 4) == (8, 32)
    assert train.resolve_batch(32, 8, 4) == (8, 32)
    assert train.resolve_batch(48, None, 8) == (6, 48)
    with pytest.raises(UserError, match="not a multiple of --ims_per_id 4"):
        train.resolve_batch(30, None, 4)
    with pytest.raises(UserError, match="--batch_size 128 and --ids_per_batch 8 disagree"):
        train.resolve_batch(128, 8, 4)
    card = (MODEL_DIR / "test" / "aligned_reid_card.sh").read_text()  # the training scripts' shared body
    assert "--print_batch_size" in card and "$((" not in card and "for a in" not in card
    for f in ("train_full_1p.sh", "train_full_8p.sh", "train_performance_1p.sh", "train_performance_8p.sh"):
        text = (MODEL_DIR / "test" / f).read_text()
        assert "batch_scope=per_device" in text and f"aligned_reid_train {f[:-3]} " in text
        assert "$((" not in text and "for a in" not in text  # no arithmetic, no loops in the shell
    for f in ("train_eval_1p.sh", "train_eval_8p.sh"):
        assert "batch_scope=global" in (MODEL_DIR / "test" / f).read_text()


# ----------------------------------------------------------------------------- 9.4 resume rules
def test_stale_checkpoint_temps_are_removed_at_start(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    stale = exp / ".tmp_999999999_ckpt.pth"  # the pid of a crashed writer, long gone
    stale.write_bytes(b"half a checkpoint")
    keep = exp / "notes.txt"
    keep.write_text("x")
    with pytest.raises(SystemExit):
        train.main(["--data_path=/nonexistent", f"--exp_dir={exp}", f"--resume={tmp_path / 'none.pth'}", *TINY])
    assert not stale.exists() and keep.exists()
    assert "removed 1 stale checkpoint temp file(s)" in capsys.readouterr().err


def test_tensorboard_without_the_package_is_one_line_before_anything_is_read_or_written(tmp_path, capsys,
                                                                                        monkeypatch):
    """--tensorboard is optional: without the package, one line up front (before the data is read:
    the data path here does not exist), and no metrics file is started."""
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    exp = tmp_path / "exp"
    exits_with_one_line(capsys, train.main, ["--data_path=/nonexistent", f"--exp_dir={exp}",
                                             f"--tensorboard={tmp_path / 'tb'}", *TINY],
                        "--tensorboard needs the tensorboard package")
    assert not (exp / "metrics.jsonl").exists() and not (tmp_path / "tb").exists()


@pytest.mark.e2e  # full_run: train_full_1p.sh in a subprocess
def test_resume_with_another_recipe_is_refused_or_warned(full_run, tmp_path, capsys):
    cmd = [a for a in full_run.log.splitlines()[0].split()[3:] if not a.startswith("--exp_dir=")]
    ckpt = full_run.out / "train_full_1p" / "ckpt.pth"
    exits_with_one_line(capsys, train.main, [*cmd, f"--exp_dir={tmp_path}", f"--resume={ckpt}", "--base_lr=0.5"],
                        f"resume from {ckpt} with a different recipe (--base_lr 0.001 -> 0.5)",
                        "--allow_recipe_change")
    # the flags of the run itself are no change: it resumes a finished run, which has nothing left to do
    # but its final test (not repeated here: --only_test evaluates a checkpoint)
    meta = torch.load(ckpt, weights_only=True)["aligned_reid"]["args"]
    from common.checkpoint import check_recipe, plain_args

    args = train.get_parser().parse_args([*cmd, f"--exp_dir={tmp_path}"])
    train.check_args(args, 1)
    assert check_recipe(meta, plain_args(args), train.RECIPE_KEYS, ckpt) == []
    said = []
    args.base_lr = 0.5
    assert check_recipe(meta, plain_args(args), train.RECIPE_KEYS, ckpt, allowed=True, log=said.append) == \
        ["--base_lr 0.001 -> 0.5"]
    assert said[0].startswith("[Warning] resuming")


# ----------------------------------------------------------------------------- issue 11
def _packages(path: Path) -> dict:
    rows = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(r.split("==", 1) for r in rows if r)


def test_requirements_txt_is_the_tested_2_14_1_line():
    """The card's `pip install -r requirements.txt` installs the pins tox tests (torch 2.14.1)."""
    default = _packages(MODEL_DIR / "requirements.txt")
    assert default == _packages(MODEL_DIR / "2.14.1_requirements.txt")
    assert default["torch"] == "2.14.1" and default["torchvision"] == "0.29.1"
    assert set(default) == set(_packages(MODEL_DIR / "2.9.1_requirements.txt"))

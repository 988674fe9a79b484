"""Bad input ends with one clear line on stderr and a non-zero exit, before any training step: flags out of
range, files that would run code, files of the wrong shape, corrupt and truncated images."""
import os
import shutil
import sys
from argparse import Namespace

import cv2
import pytest
import torch

from common.errors import UserError, main_guard
from common.testing import malicious_checkpoint

from .conftest import TINY, load_entry, run_py
from .veri_fixture import make_veri


def small_veri(path, **kw):
    return make_veri(str(path), train_ids=2, imgs_per_id=4, test_ids=1, gallery_per_id=1, **kw)


def run_train(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        # no loader workers in this process: a fork next to the threads of other in-process tests can deadlock
        main_guard(load_entry("train.py").main)([*args, *TINY, "--workers=0", "--device=cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    return exc.value.code, err


@pytest.mark.e2e
def test_label_csv_with_wrong_column_count(tmp_path):
    root = small_veri(tmp_path)
    csv = os.path.join(root, "veri", "label_test.csv")
    rows = open(csv).read().splitlines()
    rows[1] = ",".join(rows[1].split(",")[:40])
    open(csv, "w").write("\n".join(rows) + "\n")
    r = run_py("train.py", f"--root={root}", "--multitask", f"--save-dir={tmp_path / 'log'}", *TINY)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "Error: label_test.csv line 2: expected 112 columns (name,vid,color,type,x0,y0,c0,...,x35,y35,c35), got 40"]


def test_missing_heatmap_folder_for_one_image(tmp_path, capsys):
    root = small_veri(tmp_path)
    stem = sorted(os.listdir(os.path.join(root, "veri", "heatmap_train")))[3]
    shutil.rmtree(os.path.join(root, "veri", "heatmap_train", stem))
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1
    assert err[0].startswith("Error: --heatmapaware: heatmap folder missing for 1 of 8 train images, e.g. ")
    assert stem in err[0]


def test_heatmapaware_on_data_without_heatmaps(tmp_path, capsys):
    root = small_veri(tmp_path, heatmaps=False)
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1
    assert err[0].startswith("Error: --heatmapaware: heatmap folder missing for 8 of 8 train images")
    shutil.rmtree(os.path.join(root, "veri", "heatmap_train"))
    code, err = run_train(capsys, f"--root={root}", "--heatmapaware=True", f"--save-dir={tmp_path / 'log'}")
    assert code == 1 and len(err) == 1 and "--heatmapaware needs" in err[0] and "PoseEstNet trans.py" in err[0]


def test_other_user_errors(tmp_path, capsys):
    log = f"--save-dir={tmp_path / 'log'}"  # never the default ./log inside the checkout
    code, err = run_train(capsys, f"--root={tmp_path / 'nowhere'}", log)
    assert code == 1 and err == [f"Error: dataset root not found: {tmp_path / 'nowhere'} (expected a folder "
                                 "holding veri/)"]
    root = small_veri(tmp_path / "d", heatmaps=False, segments=False)
    code, err = run_train(capsys, f"--root={root}", "--pre_trained=True", log)
    assert code == 1 and len(err) == 1 and "--pre_ckpt_path" in err[0]
    code, err = run_train(capsys, f"--root={root}", "--distribute=True", log)
    assert code == 1 and len(err) == 1 and "torchrun" in err[0]


# -- flags: every numeric flag is checked when parsed (one line naming the flag and the range, exit 1) -----------
FLAG_CASES = [
    ("train.py", "--train-batch=0", "--train-batch: expected an integer >= 1, got 0"),  # upstream hung here
    ("train.py", "--batch_size=0", "--batch_size: expected an integer >= 1, got 0"),
    ("train.py", "--batch_size=-8", "--batch_size: expected an integer >= 1, got -8"),
    ("train.py", "--train-batch=abc", "--train-batch: expected an integer >= 1, got 'abc'"),
    ("train.py", "--max-epoch=0", "--max-epoch: expected an integer >= 1, got 0"),
    ("train.py", "--max_steps=-2", "--max_steps: expected an integer >= 0, got -2"),
    ("train.py", "--lr=-1", "--lr: expected a number > 0, got -1"),
    ("train.py", "--lr=nan", "--lr: expected a number > 0, got nan"),
    ("train.py", "--gamma=0", "--gamma: expected a number in (0, 1], got 0"),
    ("train.py", "--weight-decay=-1e-4", "--weight-decay: expected a number >= 0, got -1e-4"),
    ("train.py", "--num-instances=0", "--num-instances: expected an integer >= 1, got 0"),
    ("train.py", "--stepsize=0", "--stepsize: expected an integer >= 1, got 0"),
    ("train.py", "--workers=-1", "-j/--workers: expected an integer >= 0, got -1"),
    ("train.py", "--height=16", "--height: expected an integer >= 32, got 16"),
    ("train.py", "--test-batch=0", "--test-batch: expected an integer >= 1, got 0"),
    ("train.py", "--print-freq=0", "--print-freq: expected an integer >= 1, got 0"),
    ("train.py", "--eval-step=-1", "--eval-step: expected an integer >= 0, got -1"),
    ("train.py", "--device_id=-1", "--device_id: expected an integer >= 0, got -1"),
    ("train.py", "--loss_scale=0", "--loss_scale/--loss-scale: expected 'dynamic', -1 or a number > 0, got '0'"),
    ("eval.py", "--test-batch=0", "--test-batch: expected an integer >= 1, got 0"),
    ("eval.py", "--width=abc", "--width: expected an integer >= 32, got 'abc'"),
    ("eval.py", "--device_id=-2", "--device_id: expected an integer >= 0, got -2"),
    ("export.py", "--opset=3", "--opset: expected an integer in [9, 20], got 3"),
    ("export.py", "--height=0", "--height: expected an integer >= 32, got 0"),
    ("eval_onnx.py", "--workers=-3", "-j/--workers: expected an integer >= 0, got -3"),
]


@pytest.mark.parametrize("script,flag,expected", FLAG_CASES)
def test_numeric_flags_are_checked_when_parsed(script, flag, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        load_entry(script).get_args_parser().parse_args([flag])
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"Error: argument {expected}"]


def test_batch_split_over_processes_in_one_place():
    """--batch_size is the job's (global) batch: train.py divides it by the processes, once, and checks both
    divisions (by the processes and into P ids x K images)."""
    split = load_entry("train.py").per_process_batch

    def args(**kw):
        return Namespace(**{"batch_size": None, "train_batch": None, "num_instances": 4, **kw})

    a = args(batch_size=256)
    split(a, 8)
    assert (a.train_batch, a.global_batch) == (32, 256)
    a = args()
    split(a, 2)
    assert (a.train_batch, a.global_batch) == (32, 64)  # upstream's --train-batch default, per process
    with pytest.raises(UserError, match=r"^--batch_size 15 \(images per step over all processes\) must be "
                                        r"divisible by the number of processes, 2$"):
        split(args(batch_size=15), 2)
    with pytest.raises(UserError, match=r"--batch_size 24 over 4 process\(es\) gives 6 per process: .* multiple of "
                                        r"--num-instances 4"):
        split(args(batch_size=24), 4)
    with pytest.raises(UserError, match="not both"):
        split(args(batch_size=32, train_batch=32), 1)


# -- files are data: no load path runs code ----------------------------------------------------------------------
def tiny_features(path, old_names=True):
    """A torchvision-layout ImageNet file for -a densenet_tiny (features.*, torchvision<0.3 names like
    densenet121-a639ec97.pth), as an OrderedDict of tensors."""
    from multitasknet.model import MultiTaskNet

    sd = {}
    for k, v in MultiTaskNet(1, arch="densenet_tiny").base.state_dict().items():
        if old_names and "denselayer" in k:
            k = k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2.")
        sd["features." + k] = v
    sd["classifier.weight"] = torch.zeros(1000, 8)
    torch.save(sd, path)
    return path


def test_no_load_path_runs_code(tmp_path, capsys, monkeypatch):
    """A checkpoint whose unpickling would create a marker, passed to every load path of MultiTaskNet."""
    root = small_veri(tmp_path / "d", heatmaps=False, segments=False)
    marker = tmp_path / "pwned"
    evil = str(malicious_checkpoint(tmp_path / "evil.pth.tar", marker))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    malicious_checkpoint(run_dir / "checkpoint_ep3.pth.tar", marker)  # what a bare --resume would pick
    train = [f"--root={root}", "--batch_size=8", "--max-epoch=1", *TINY, "--workers=0", "--device=cpu"]
    paths = {
        "train.py --pre_ckpt_path": ("train.py", [*train, f"--pre_ckpt_path={evil}", f"--save-dir={tmp_path / 'a'}"]),
        "train.py --load-weights": ("train.py", [*train, f"--load-weights={evil}", f"--save-dir={tmp_path / 'b'}"]),
        "train.py --evaluate --load-weights": ("train.py", [*train, "--evaluate", f"--load-weights={evil}",
                                                            f"--save-dir={tmp_path / 'c'}"]),
        "train.py --resume FILE": ("train.py", [*train, f"--resume={evil}", f"--save-dir={tmp_path / 'd'}"]),
        "train.py --resume (the run folder's newest)": ("train.py", [*train, "--resume", f"--save-dir={run_dir}"]),
        "eval.py --ckpt_path": ("eval.py", [f"--root={root}", f"--ckpt_path={evil}"]),
        "eval.py --pth_path": ("eval.py", [f"--root={root}", f"--pth_path={evil}"]),
        "export.py --ckpt_path": ("export.py", [f"--ckpt_path={evil}", f"--file_name={tmp_path / 'x'}"]),
        "src/utils/pthtockpt.py --pth_path": ("src/utils/pthtockpt.py", [f"--pth_path={evil}"]),
    }
    for what, (script, argv) in paths.items():
        with pytest.raises(SystemExit) as exc:
            main_guard(load_entry(script).main)(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 1 and len(err) == 1, (what, err)
        assert err[0].startswith("Error: refused to load ") and "which is code, not data" in err[0], (what, err)
        assert not marker.exists(), what
    # a torchrun restart (--max_restarts) resumes from the run folder by itself: the same refusal
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    with pytest.raises(SystemExit):
        main_guard(load_entry("train.py").main)([*train, f"--save-dir={run_dir}"])
    assert "refused to load --resume checkpoint" in capsys.readouterr().err and not marker.exists()


def test_files_of_the_wrong_shape_are_one_line(tmp_path, capsys):
    root = small_veri(tmp_path / "d", heatmaps=False, segments=False)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(2), 3], listed)
    train = [f"--root={root}", "--batch_size=8", *TINY, "--workers=0", "--device=cpu", f"--save-dir={tmp_path / 'l'}"]
    for script, argv, expected in (
            ("train.py", [*train, f"--pre_ckpt_path={listed}"], f"--pre_ckpt_path {listed}: the file holds no model "
                                                                 "state_dict"),
            ("train.py", [*train, f"--load-weights={listed}"], f"--load-weights {listed}: the file holds no model "
                                                                "state_dict"),
            ("eval.py", [f"--root={root}", f"--ckpt_path={listed}"], f"{listed}: the file holds no model state_dict")):
        with pytest.raises(SystemExit) as exc:
            main_guard(load_entry(script).main)(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 1 and len(err) == 1 and err[0].startswith("Error: " + expected), err


# -- corrupt images: a truncated JPEG stops the run with its name, or is skipped and counted ---------------------
def test_truncated_jpeg_stops_training_or_is_skipped_and_counted(tmp_path, capsys):
    root = small_veri(tmp_path / "d", heatmaps=False, segments=False)
    folder = os.path.join(root, "veri", "image_train")
    bad = os.path.join(folder, sorted(os.listdir(folder))[5])
    data = open(bad, "rb").read()
    open(bad, "wb").write(data[: len(data) // 2])
    assert cv2.imread(bad) is not None  # OpenCV alone returns a grey-filled image and training would go on
    args = [f"--root={root}", "--batch_size=8", "--max-epoch=1", "--eval-step=0", *TINY, "--workers=0",
            "--device=cpu", f"--save-dir={tmp_path / 'log'}"]
    code, err = run_train(capsys, *args)
    assert code == 1 and err == [f"Error: cannot read image {bad} (truncated JPEG: no end-of-image marker) "
                                 "(use --skip_bad_images to skip such samples)"]
    main_guard(load_entry("train.py").main)([*args, "--skip_bad_images"])
    out = capsys.readouterr()
    assert f"[Warning] skipped sample: bad image {bad} (truncated JPEG: no end-of-image marker)" in out.err
    # 2 ids x 4 images, batch 8: the epoch is one batch holding every image once
    assert "--skip_bad_images: 1 sample(s) of bad images skipped in epoch 1 (each file named above)" in out.out
    assert (tmp_path / "log" / "checkpoint_ep1.pth.tar").is_file()


def test_tensorboard_without_the_package(tmp_path, capsys, monkeypatch):
    """--tensorboard where the optional package is missing: one line, exit 1, before any step or file."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    root = small_veri(tmp_path)
    code, err = run_train(capsys, f"--root={root}", f"--save-dir={tmp_path / 'log'}", f"--tensorboard={tmp_path}/tb")
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("Error: --tensorboard needs the tensorboard package")
    assert sorted(os.listdir(tmp_path / "log")) == ["log_train.txt"] and not (tmp_path / "tb").exists()

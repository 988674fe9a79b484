"""PoseEstNet bad input: flags and config values out of range, files that would run code, files of the wrong shape,
truncated images (train and trans). Each ends with one line on stderr and exit status 1, or, with
--skip_bad_images, goes on and counts what it skipped. In-process calls of main(): no fresh interpreter each."""
import csv
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.testing import malicious_checkpoint

from .conftest import TINY_CFG, load_entry
from .test_pipeline import one_error_line, rows


@pytest.mark.parametrize("script,flag,expected", [
    ("train.py", "--epochs=0", "--epochs: expected an integer >= 1, got 0"),
    ("train.py", "--batch_size=0", "--batch_size: expected an integer >= 1, got 0"),
    ("train.py", "--batch_size=-4", "--batch_size: expected an integer >= 1, got -4"),
    ("train.py", "--batch_size=abc", "--batch_size: expected an integer >= 1, got 'abc'"),
    ("train.py", "--max_steps=-2", "--max_steps: expected an integer >= 0, got -2"),
    ("train.py", "--workers=-1", "--workers: expected an integer >= 0, got -1"),
    ("train.py", "--val_freq=0", "--val_freq: expected an integer >= 1, got 0"),
    ("train.py", "--seed=-1", "--seed: expected an integer >= 0, got -1"),
    ("train.py", "--device_id=-1", "--device_id: expected an integer >= 0, got -1"),
    ("eval.py", "--batch_size=0", "--batch_size: expected an integer >= 1, got 0"),
    ("eval.py", "--workers=-2", "--workers: expected an integer >= 0, got -2"),
    ("trans.py", "--batch_size=0", "--batch_size: expected an integer >= 1, got 0"),
    ("trans.py", "--write_threads=0", "--write_threads: expected an integer >= 1, got 0"),
    ("export.py", "--opset=3", "--opset: expected an integer in [9, 20], got 3"),
    ("export.py", "--tolerance=0", "--tolerance: expected a number > 0, got 0"),
])
def test_numeric_flags_are_checked_when_parsed(script, flag, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        load_entry(script).get_args([flag])
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"Error: argument {expected}"]


def test_config_numbers_and_files(tmp_path, main_of):
    """Upstream-style overrides are checked like flags; a config is YAML, never code."""
    for key, value, expected in (("TRAIN.LR", "-1.0", "TRAIN.LR = -1.0: expected a number > 0"),
                                 ("TRAIN.BATCH_SIZE_PER_GPU", "0",
                                  "TRAIN.BATCH_SIZE_PER_GPU = 0: expected a number >= 1"),
                                 ("TRAIN.END_EPOCH", "0", "TRAIN.END_EPOCH = 0: expected a number >= 1"),
                                 ("WORKERS", "-1", "WORKERS = -1: expected a number >= 0")):
        one_error_line(main_of("train.py", "--cfg", TINY_CFG, key, value), expected)
    marker = tmp_path / "pwned"
    evil = tmp_path / "w32.py"
    evil.write_text(f"import os\nos.system('touch {marker}')\ncfg = {{}}\n")
    one_error_line(main_of("train.py", "--cfg", evil), "configs are YAML files", str(evil))
    one_error_line(main_of("eval.py", "--cfg", evil), "configs are YAML files")
    assert not marker.exists()


@pytest.mark.e2e
def test_no_load_path_runs_code(tmp_path, demo_raw, main_of):
    """A checkpoint whose unpickling would create a marker, passed to every PoseEstNet load path."""
    marker = tmp_path / "pwned"
    evil = malicious_checkpoint(tmp_path / "evil.pth", marker)
    out = tmp_path / "out"
    run_dir = out / "veri" / "pose_hrnet" / "demo_tiny"
    run_dir.mkdir(parents=True)
    malicious_checkpoint(run_dir / "checkpoint.pth", marker)  # what bare --resume / AUTO_RESUME pick
    veri = tmp_path / "veri"
    veri.mkdir()
    train = ["train.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose", "--device", "cpu", "--workers", "0"]
    paths = {
        "eval.py --ckpt_path": ["eval.py", "--cfg", TINY_CFG, "--ckpt_path", evil, "--device", "cpu"],
        "eval.py TEST.MODEL_FILE": ["eval.py", "--cfg", TINY_CFG, "--device", "cpu", "TEST.MODEL_FILE", evil],
        "export.py --ckpt_path": ["export.py", "--cfg", TINY_CFG, "--ckpt_path", evil, "--file_name", tmp_path / "x"],
        "trans.py --ckpt_path": ["trans.py", "--cfg", TINY_CFG, "--ckpt_path", evil, "--data_dir", veri,
                                 "--device", "cpu"],
        "train.py --pre_ckpt_path": [*train, "--output_dir", tmp_path / "a", "--pre_ckpt_path", evil],
        "train.py --resume FILE": [*train, "--output_dir", tmp_path / "b", "--resume", evil],
        "train.py --resume (run folder)": [*train, "--output_dir", out, "--resume"],
        "train.py AUTO_RESUME": [*train, "--output_dir", out, "AUTO_RESUME", "True"],
    }
    for what, argv in paths.items():
        code, err = main_of(*argv)
        assert code == 1, (what, err)
        one_error_line((code, err), "refused to load", "which is code, not data")
        assert not marker.exists(), what


@pytest.mark.e2e
def test_files_of_the_wrong_shape_and_upstream_layouts(tmp_path, demo_raw, main_of):
    from poseestnet.config import load_config
    from poseestnet.pose_hrnet import get_pose_net
    from poseestnet.weights import load_pose_weights

    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(2), 1], listed)
    one_error_line(main_of("train.py", "--cfg", TINY_CFG, "--pre_ckpt_path", listed, "--data_dir", demo_raw / "pose",
                           "--device", "cpu", "--output_dir", tmp_path / "out"),
                   f"pretrained HRNet weights {listed} holds a list, expected a dict")
    one_error_line(main_of("eval.py", "--cfg", TINY_CFG, "--ckpt_path", listed, "--device", "cpu"),
                   "does not hold a pose_hrnet state_dict")
    mindspore = tmp_path / "PoseEstNet.ckpt"  # the card's run_trans_*.sh PoseEstNet.ckpt: a MindSpore file
    mindspore.write_bytes(b"\x0a\x12MindSpore checkpoint protobuf")
    one_error_line(main_of("trans.py", "--cfg", TINY_CFG, "--ckpt_path", mindspore, "--data_dir", tmp_path,
                           "--device", "cpu"), "looks like a MindSpore .ckpt", "model_best.pth")
    # upstream (HRNet pose code) layouts, safe types only: checkpoint.pth of a DataParallel run with a numpy
    # perf_indicator, and the bare model_best.pth / final_state.pth
    cfg = load_config(str(TINY_CFG))
    src = get_pose_net(cfg)
    sd = src.state_dict()
    torch.save({"epoch": 3, "model": "pose_hrnet", "state_dict": {"module." + k: v for k, v in sd.items()},
                "best_state_dict": sd, "perf": np.float64(0.5), "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "checkpoint.pth")
    torch.save(sd, tmp_path / "model_best.pth")
    for name in ("checkpoint.pth", "model_best.pth"):
        model = load_pose_weights(get_pose_net(cfg), str(tmp_path / name))
        assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items()), name


def small_pose_data(demo_raw, dest, n=2):
    """The first n train and test rows of the demo's PoseEstNet data, images copied (not linked)."""
    for split in ("train", "test"):
        src_rows = rows(demo_raw / "pose" / "annot" / f"label_{split}.csv")[:n]
        (dest / "annot").mkdir(parents=True, exist_ok=True)
        (dest / "images" / f"image_{split}").mkdir(parents=True)
        with open(dest / "annot" / f"label_{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(src_rows)
        for r in src_rows:
            shutil.copyfile(demo_raw / "pose" / "images" / f"image_{split}" / r[0],
                            dest / "images" / f"image_{split}" / r[0])
    return dest


def truncate(path):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(path)) is not None  # OpenCV alone decodes it (grey rows) without an error
    return str(path)


@pytest.mark.e2e
def test_truncated_jpeg_in_training(tmp_path, demo_raw, main_of, capsys):
    data = small_pose_data(demo_raw, tmp_path / "pose")
    bad = truncate(sorted((data / "images" / "image_train").iterdir())[1])
    out = tmp_path / "out"
    run_dir = out / "veri" / "pose_hrnet" / "demo_tiny"
    args = ["train.py", "--cfg", TINY_CFG, "--data_dir", data, "--output_dir", out, "--device", "cpu", "--workers",
            "0", "--batch_size", "2", "--epochs", "1"]
    one_error_line(main_of(*args), f"cannot read image {bad} (truncated JPEG: no end-of-image marker)",
                   "--skip_bad_images")
    (run_dir / ".tmp_999999999_checkpoint.pth").write_bytes(b"half a checkpoint")  # a write that crashed
    assert load_entry("train.py").main([str(a) for a in args[1:]] + ["--skip_bad_images"]) == 0
    printed = capsys.readouterr().out
    assert f"[Warning] skipped bad image: {bad} (truncated JPEG: no end-of-image marker)" in printed
    assert "--skip_bad_images: 1 sample(s) of bad images skipped in epoch 0 (each file named above)" in printed
    names = {p.name for p in run_dir.iterdir()}
    assert {"checkpoint.pth", "final_state.pth"} <= names and not [n for n in names if n.startswith(".tmp_")]
    mask = os.umask(0)
    os.umask(mask)
    assert (run_dir / "checkpoint.pth").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.e2e
def test_truncated_jpeg_in_trans(tmp_path, demo_raw, trained, main_of, capsys):
    veri = tmp_path / "veri"
    (veri / "image_query").mkdir(parents=True)
    query = rows(demo_raw / "veri" / "label_query.csv")[:2]
    with open(veri / "label_query.csv", "w", newline="") as f:
        csv.writer(f).writerows(query)
    for r in query:
        shutil.copyfile(demo_raw / "veri" / "image_query" / r[0], veri / "image_query" / r[0])
    bad = truncate(veri / "image_query" / query[0][0])
    args = ["trans.py", "--cfg", TINY_CFG, "--ckpt_path", trained[0] / "final_state.pth", "--data_dir", veri,
            "--splits", "query", "--device", "cpu", "--workers", "0"]
    one_error_line(main_of(*args), f"cannot read image {bad} (truncated JPEG")
    assert load_entry("trans.py").main([str(a) for a in args[1:]] + ["--skip_bad_images"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped bad image: {bad}" in printed and "1 of 2 query image(s) skipped" in printed
    assert [r[0] for r in rows(veri / "label_query.csv")] == [query[1][0]]  # left out of the CSVs MultiTaskNet reads
    assert [r[0] for r in rows(veri / "pose_query.csv")] == [query[1][0]]
    assert not (veri / "heatmap_query" / query[0][0][:-4]).exists()
    mask = os.umask(0)
    os.umask(mask)
    assert (veri / "label_query.csv").stat().st_mode & 0o777 == 0o666 & ~mask  # follows the umask

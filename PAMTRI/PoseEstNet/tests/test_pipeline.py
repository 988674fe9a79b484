"""End to end on tiny demo data: train (checkpoint, resume), eval, the trans output formats,
the make_demo_data chain, and the bad-input cases (one line on stderr, exit status 1)."""
import csv
import os
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.metrics_file import read_rows
from common.testing import run_on_terminal

POSE_DIR = Path(__file__).resolve().parents[1]
TINY_CFG = POSE_DIR / "experiments" / "veri" / "hrnet" / "demo_tiny.yaml"

EPOCH_LINE = re.compile(r"^Epoch: \[\d+\]\[\d+/\d+\]\tTime [\d.]+s \([\d.]+s\)\tSpeed [\d.]+ samples/s\t"
                        r"Data [\d.]+s \([\d.]+s\)\tLoss [\d.]+ \([\d.]+\)\tAccuracy [\d.]+ \([\d.]+\)$", re.M)


def rows(path):
    with open(path, newline="") as f:
        return [r for r in csv.reader(f)]


def one_error_line(proc, *needles):
    """A subprocess result, or (exit status, stderr) of an in-process main()."""
    code, err = (proc.returncode, proc.stderr) if hasattr(proc, "returncode") else proc
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.e2e
def test_raw_demo_formats(demo_raw):
    veri = demo_raw / "veri"
    for split in ("train", "test", "query"):
        r = rows(veri / f"label_{split}.csv")
        assert r and all(len(x) == 112 for x in r)
        assert [x[0] for x in r] == sorted(x[0] for x in r)
        assert all(os.path.isfile(veri / f"image_{split}" / x[0]) for x in r)
        assert all(re.fullmatch(r"\d{4}_c\d{3}_\d{8}_\d\.jpg", x[0]) for x in r)
    # every query image is also in the gallery, under the same name
    assert {x[0] for x in rows(veri / "label_query.csv")} <= {x[0] for x in rows(veri / "label_test.csv")}
    train_ids = {x[1] for x in rows(veri / "label_train.csv")}
    assert not train_ids & {x[1] for x in rows(veri / "label_test.csv")}
    ann = {s: rows(demo_raw / "annot" / f"label_{s}.csv") for s in ("train", "test")}
    for r in ann["train"] + ann["test"]:
        assert len(r) == 111 and all(v.lstrip("-").isdigit() for v in r[1:])
        assert set(r[5::3]) <= {"0", "1"}
    by_name = {x[0]: x[1] for x in rows(veri / "label_train.csv")}
    assert not {by_name[r[0]] for r in ann["train"]} & {by_name[r[0]] for r in ann["test"]}


@pytest.mark.e2e
def test_train_writes_upstream_lines_and_checkpoint(trained):
    out, stdout = trained
    assert len(EPOCH_LINE.findall(stdout)) == 3
    assert re.search(r"^FPS@all [\d.]+ images/s", stdout, re.M)
    ck = torch.load(out / "checkpoint.pth", weights_only=True)  # plain data only: loads without the allowlist
    assert ck["model"] == "pose_hrnet" and ck["step"] == 3 and ck["epoch"] == 0 and ck["step_in_epoch"] == 3
    assert {"optimizer", "amp", "rng", "args", "cfg", "state_dict", "recipe"} <= set(ck)
    assert ck["recipe"]["global_batch"] == 4 and ck["args"]["batch_size"] == 4
    final = torch.load(out / "final_state.pth", weights_only=True)
    assert set(final) == set(ck["state_dict"]) and "final_layer.weight" in final
    # metrics.jsonl beside checkpoint.pth: the 3 logged steps (PRINT_FREQ 1), then the epoch cut by --max_steps
    m = read_rows(out / "metrics.jsonl")
    assert [(r["kind"], r["epoch"], r["step"]) for r in m] == [("step", 1, 1), ("step", 1, 2), ("step", 1, 3),
                                                               ("epoch", 1, 3)]
    assert set(m[0]) == {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
    logged = [float(x) for x in re.findall(r"\tLoss ([\d.]+) ", stdout)]
    assert [r["losses"]["loss"] for r in m[:3]] == pytest.approx(logged, abs=1e-5)
    assert m[0]["lr"] == ck["recipe"]["lr"] and m[-1]["metrics"] == {}  # no validation in a cut epoch
    assert "\r" not in stdout and "it/s" not in stdout  # no progress bar off a terminal


@pytest.mark.e2e
def test_resume_continues_exactly(demo_raw, trained, py, main_of):
    """A bare --resume with nothing saved yet starts from scratch and says so; stopped after 2 steps, a bare
    --resume continues from the run folder's checkpoint and ends with the uninterrupted run's weights. A resume
    with another recipe (seed) is refused with the way out."""
    out_a, _ = trained
    out_b = demo_raw / "train_b"
    common_args = ["train.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose", "--output_dir", out_b,
                   "--device", "cpu", "--workers", "0", "--batch_size", "4", "--epochs", "1"]
    ck = out_b / "veri" / "pose_hrnet" / "demo_tiny" / "checkpoint.pth"
    proc = py(*common_args, "--resume", "--max_steps", "2", "PRINT_FREQ", "1")
    assert f"--resume: nothing to resume from yet ({ck} does not exist): starting from scratch" in proc.stdout
    one_error_line(main_of(*common_args, "--max_steps", "3", "--resume", "--seed", "2"),
                   f"resume from {ck} with a different recipe (--seed 1 -> 2)", "--allow_recipe_change")
    proc = py(*common_args, "--resume", "--max_steps", "3", "PRINT_FREQ", "1")
    assert f"--resume: resuming from {ck}" in proc.stdout and "resumed from" in proc.stdout
    # metrics.jsonl continued mid-epoch: each step once, epoch 1's row once (the stopped part's dropped), the same
    # rows as the uninterrupted run's but for the wall time and images/s
    m = read_rows(ck.parent / "metrics.jsonl")
    assert [(r["kind"], r["epoch"], r["step"]) for r in m] == [("step", 1, 1), ("step", 1, 2), ("step", 1, 3),
                                                               ("epoch", 1, 3)]
    ref = read_rows(out_a / "metrics.jsonl")
    assert [r["losses"] for r in m[:3]] == [r["losses"] for r in ref[:3]]
    a = torch.load(out_a / "final_state.pth", weights_only=True)
    b = torch.load(out_b / "veri" / "pose_hrnet" / "demo_tiny" / "final_state.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.e2e
def test_eval_prints_the_pck_table(demo_raw, trained, sh, tmp_path):
    out, _ = trained
    # the card's wrapper; upstream-style override of the model file after the flags
    proc = sh("run_eval_gpu.sh", demo_raw / "pose", out / "final_state.pth", "0", "--workers", "0",
              "TEST.BATCH_SIZE_PER_GPU", "8", cwd=tmp_path, env_cfg=TINY_CFG)
    assert (tmp_path / "eval_gpu.log").read_text() == proc.stdout
    lines = proc.stdout.splitlines()
    k = lines.index("| Arch | Wheel | Fender | Back | Front | WindshieldBack | WindshieldFront | Mean | Mean@0.1 |")
    assert lines[k + 1] == "|---" * 9 + "|"
    assert re.fullmatch(r"\| pose_hrnet( \| \d+\.\d{3}){8} \|", lines[k + 2]), lines[k + 2]
    assert re.search(r"^Test: \[\d+/\d+\]\tTime ", proc.stdout, re.M)


@pytest.mark.e2e
def test_card_train_wrappers(demo_raw, sh, tmp_path):
    """scripts/run_single_train_*.sh trains on one device and logs to ./train_<target>.log; both train
    wrappers stop with their usage line (exit 1) when positional arguments are missing."""
    proc = sh("run_single_train_ascend.sh", demo_raw / "pose", "none", "0", "--workers", "0", "--batch_size", "4",
              "--epochs", "1", "--max_steps", "1", "--output_dir", tmp_path / "out", cwd=tmp_path, env_cfg=TINY_CFG)
    assert (tmp_path / "train_ascend.log").read_text() == proc.stdout
    assert (tmp_path / "out" / "veri" / "pose_hrnet" / "demo_tiny" / "final_state.pth").is_file()
    for script, last in (("run_single_train_gpu.sh", "DEVICE_ID"), ("run_distribute_train_gpu.sh", "RANK_SIZE")):
        bad = sh(script, "x", cwd=tmp_path, check=False)
        assert bad.returncode == 1
        assert bad.stderr.strip().endswith(f"{script} DATA_PATH PRETRAINED_PATH {last} [extra flags]"), bad.stderr


@pytest.fixture(scope="module")
def trans_out(demo_raw, trained, sh, tmp_path_factory):
    out, _ = trained
    dest = tmp_path_factory.mktemp("trans")
    veri = dest / "veri"
    shutil.copytree(demo_raw / "veri", veri)
    proc = sh("run_trans_gpu.sh", dest, out / "final_state.pth", "0", "--workers", "0", cwd=dest, env_cfg=TINY_CFG)
    assert (dest / "trans_gpu.log").is_file()
    return veri, proc


@pytest.mark.e2e
def test_trans_output_layout(demo_raw, trans_out):
    veri, proc = trans_out
    assert proc.stdout.count("images ->") == 3
    for split in ("test", "query", "train"):
        original = rows(demo_raw / "veri" / f"label_{split}.csv")
        label = rows(veri / f"label_{split}.csv")
        pose = rows(veri / f"pose_{split}.csv")
        assert all(len(r) == 112 for r in label) and all(len(r) == 109 for r in pose)
        assert [r[0] for r in label] == [r[0] for r in pose] == sorted(r[0] for r in original)
        assert [r[:4] for r in label] == [r[:4] for r in original]  # name, vid, colour, type kept
        assert all(lr[4:] == pr[1:] for lr, pr in zip(label, pose))  # the same 108 values
        assert all(re.fullmatch(r"-?\d+\.\d{3}", v) for r in pose for v in r[1:])
        assert rows(veri / f"label_{split}.csv.orig") == original
        for name in [r[0] for r in label]:
            stem = name[:-4]
            hm = sorted(os.listdir(veri / f"heatmap_{split}" / stem))
            sg = sorted(os.listdir(veri / f"segment_{split}" / stem))
            assert hm == ["%02d.jpg" % j for j in range(36)] and sg == ["%02d.jpg" % s for s in range(13)]
        img = cv2.imread(str(veri / f"heatmap_{split}" / stem / "35.jpg"), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.shape == (32, 32)  # grayscale, heatmap size of demo_tiny
        seg = cv2.imread(str(veri / f"segment_{split}" / stem / "12.jpg"), cv2.IMREAD_UNCHANGED)
        assert seg.dtype == np.uint8 and seg.shape == (64, 64)


@pytest.mark.e2e
def test_trans_heatmap_pixels_are_the_network_output(demo_raw, trained, trans_out):
    """The JPEG of joint j is the flip-averaged map x255, truncated (JPEG loss aside)."""
    from poseestnet.config import load_config
    from poseestnet.inference import forward_flip_test
    from poseestnet.pose_hrnet import get_pose_net
    from poseestnet.veri import WholeImages

    veri, _ = trans_out
    name = rows(veri / "label_query.csv")[0][0]
    cfg = load_config(str(TINY_CFG))
    model = get_pose_net(cfg)
    model.load_state_dict(torch.load(trained[0] / "final_state.pth", weights_only=True))
    x = WholeImages([str(veri / "image_query" / name)], cfg.MODEL.IMAGE_SIZE)[0][0][None]
    with torch.no_grad():
        maps = forward_flip_test(model.eval(), x)[0].numpy()
    expected = np.clip(maps * 255, 0, 255).astype(np.uint8)
    for j in (0, 17, 35):
        got = cv2.imread(str(veri / "heatmap_query" / name[:-4] / ("%02d.jpg" % j)), cv2.IMREAD_GRAYSCALE)
        assert np.abs(got.astype(int) - expected[j].astype(int)).mean() < 3


@pytest.mark.e2e
def test_make_demo_chain_end_to_end(demo_chain):
    out, stdout = demo_chain  # PAMTRI/conftest.py: make_demo_data.py with --pose_epochs 1, shared with MultiTaskNet
    assert stdout.strip().splitlines()[-1] == str(out)
    veri = out / "veri"
    for split in ("train", "query", "test"):
        label = rows(veri / f"label_{split}.csv")
        assert all(len(r) == 112 for r in label)
        assert len(os.listdir(veri / f"heatmap_{split}")) == len(label) == len(os.listdir(veri / f"segment_{split}"))
    run_dir = out / "pose" / "output" / "veri" / "pose_hrnet" / "demo_tiny"
    assert (run_dir / "final_state.pth").is_file()
    # the epoch's row of metrics.jsonl holds the PCK table of the log (printed with 3 decimals)
    table = [x for x in (out / "pose" / "train.log").read_text().splitlines() if x.startswith("| ")]
    names, values = table[-2].split("|")[2:-1], table[-1].split("|")[2:-1]
    epochs = [r for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1]
    got = epochs[0]["metrics"]
    assert {f"PCK_{n.strip()}": float(v) for n, v in zip(names, values)} == pytest.approx(
        {k: v for k, v in got.items() if k != "PCK"}, abs=6e-4)
    assert got["PCK"] == got["PCK_Mean"]


@pytest.mark.e2e
def test_progress_bar_under_a_pseudo_terminal(demo_raw, tmp_path):
    """With stdout on a terminal (a pty here) train.py draws the per-epoch bar beside its log lines."""
    rc, out = run_on_terminal([sys.executable, "train.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose",
                               "--output_dir", tmp_path, "--device", "cpu", "--workers", "0", "--batch_size", "4",
                               "--epochs", "1", "--max_steps", "2"], cwd=POSE_DIR,
                              env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert rc == 0, out[-2000:]
    assert "Ep 1/1" in out and "loss=" in out and "img/s=" in out, out[-2000:]
    assert "epoch: 1 step: " in out  # the log lines are still written


# ---- bad input: one clear line, exit status 1 ----

@pytest.mark.e2e
def test_tensorboard_without_the_package(tmp_path, demo_raw, main_of, monkeypatch):
    """--tensorboard where the optional package is missing: one line, exit 1, before any step or file."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    one_error_line(main_of("train.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose", "--output_dir", tmp_path,
                           "--device", "cpu", "--workers", "0", "--tensorboard", tmp_path / "tb"),
                   "--tensorboard needs the tensorboard package")
    run_dir = tmp_path / "veri" / "pose_hrnet" / "demo_tiny"
    assert os.listdir(run_dir) == [] and not (tmp_path / "tb").exists()


@pytest.mark.e2e
def test_trans_label_csv_with_wrong_column_count(tmp_path, trained, py):
    veri = tmp_path / "veri"
    (veri / "image_test").mkdir(parents=True)
    (veri / "label_test.csv").write_text("0002_c002_00030600_0.jpg,2,1,4,380.1\n")
    proc = py("trans.py", "--cfg", TINY_CFG, "--ckpt_path", trained[0] / "final_state.pth", "--data_dir", veri,
              "--splits", "test", "--device", "cpu", check=False)
    one_error_line(proc, "label_test.csv line 1", "expected 112 columns", "got 5")


def test_train_annotation_csv_with_wrong_column_count(tmp_path, main_of):
    root = tmp_path / "pose"
    (root / "images" / "image_train").mkdir(parents=True)
    (root / "annot").mkdir()
    (root / "annot" / "label_train.csv").write_text("a.jpg,100,80," + ",".join(["1"] * 105) + "\n")
    one_error_line(main_of("train.py", "--cfg", TINY_CFG, "--data_dir", root, "--device", "cpu", "--output_dir",
                           tmp_path / "out"), "label_train.csv line 1", "expected 111 columns", "got 108")


@pytest.mark.e2e
def test_eval_checkpoint_of_another_model(tmp_path, demo_raw, py):
    path = tmp_path / "other.pth"
    torch.save({"features.conv0.weight": torch.zeros(64, 3, 7, 7)}, path)
    proc = py("eval.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose", "--ckpt_path", path,
              "--device", "cpu", check=False)
    one_error_line(proc, "does not fit this model")


def test_missing_data_and_bad_override(tmp_path, main_of):
    one_error_line(main_of("trans.py", "--cfg", TINY_CFG, "--ckpt_path", "x.pth", "--data_dir", tmp_path / "nowhere"),
                   "data folder not found")
    one_error_line(main_of("train.py", "--cfg", TINY_CFG, "TRAIN.NO_SUCH_KEY", "1"), "bad config override")
    one_error_line(main_of("train.py", "--cfg", TINY_CFG, "--pre_ckpt_path", tmp_path / "hrnet_w32-36af842e.pth"),
                   "pretrained HRNet weights not found", "--pre_trained False")


@pytest.mark.e2e
def test_export_onnx_parity(trained, py, tmp_path):
    proc = py("export.py", "--cfg", TINY_CFG, "--ckpt_path", trained[0] / "final_state.pth",
              "--file_name", tmp_path / "pose")
    assert (tmp_path / "pose.onnx").is_file() and "max |PyTorch - onnxruntime|" in proc.stdout


@pytest.mark.e2e
def test_trans_corrupt_image_in_a_worker(tmp_path, demo_raw, trained, py):
    veri = tmp_path / "veri"
    (veri / "image_query").mkdir(parents=True)
    name = rows(demo_raw / "veri" / "label_query.csv")[0][0]
    (veri / "image_query" / name).write_bytes(b"not a jpeg")
    shutil.copy(demo_raw / "veri" / "label_query.csv", veri / "label_query.csv")
    with open(veri / "label_query.csv") as f:
        first = f.readline()
    (veri / "label_query.csv").write_text(first)
    proc = py("trans.py", "--cfg", TINY_CFG, "--ckpt_path", trained[0] / "final_state.pth", "--data_dir", veri,
              "--splits", "query", "--device", "cpu", "--workers", "1", check=False)
    one_error_line(proc, "cannot read image", name)

"""End-to-end: the real PAMTRI/test/*.sh and MultiTaskNet/scripts/*.sh on a tiny VeRi with heatmaps and segments."""
import re
import shlex
import shutil

import numpy as np
import pytest
import torch
from multitasknet.evaluation import evaluate_rank
from multitasknet.veri import VeRi

from common import checkpoint
from common.metrics_file import read_rows
from common.testing import ascend_extract, digests, malicious_checkpoint, read_summary

from .conftest import PAMTRI_DIR, TINY, load_entry, run_card, run_py, run_script

pytestmark = pytest.mark.e2e  # every test here runs the scripts (or needs a run of them)

TEST_DIR = PAMTRI_DIR / "test"
CKPT_SUB = "densenet121-xent-htri-veri-multitask"  # train_full_1p.sh's own folder
EPOCHS = 4
H_ARGS = ["--epochs=%d" % EPOCHS, "--batch_size=8", "--heatmapaware", "--keyptaware", "--lr=3e-3", *TINY]
ROW_KEYS = {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
SUMMARY_KEYS = ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
                "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]

# The Ascend port's CI lines (PAMTRI spec 8.2), verbatim, on $log
ASCEND_FPS = """grep -a 'Fps' $log|awk -F " " '{print $13}'|awk 'END {print}'"""
ASCEND_ACC = """grep -a 'mAP' $log|awk 'END {print}'|awk -F "mAP" '{print $NF}'|awk -F " " '{print $2}'"""
ASCEND_LOSS = """grep Epoch: $log|grep -v Test|awk -F "Loss" '{print $NF}' | awk -F " " '{print $2}'"""
# the documented replacement for the FPS line (upstream's ends on `Fps_sum_avg : x`, whose $13 is empty)
FPS_SUM_AVG = """grep -a 'Fps_sum_avg' $log|awk 'END {print $3}'"""


def result_block(text):
    return [x for x in text.splitlines() if x.startswith(("mAP: ", "Rank-", "Color ", "Type "))]


def chance_map(root):
    """Expected mAP of a random ranking on this query/gallery (same junk rule)."""
    v = VeRi(str(root), splits=("query", "test"), verbose=False)
    g = torch.Generator().manual_seed(0)
    return float(np.mean([evaluate_rank(torch.rand(len(v.query), len(v.gallery), generator=g), v.query.vids,
                                        v.gallery.vids, v.query.camids, v.gallery.camids)[1] for _ in range(200)]))


def check_ascend_lines(log, summary, loss_file=None):
    """The Ascend CI's grep/awk lines on our log give the summary's numbers (accuracy keeps upstream's '%',
    loss its parentheses); the FPS line is empty by upstream's quirk, its documented replacement is exact."""
    assert ascend_extract(ASCEND_FPS, log) == ""
    assert ascend_extract(FPS_SUM_AVG, log) == summary["ActualFPS"] != ""
    acc_key = "EvalAccuracy" if "EvalAccuracy" in summary else "TrainAccuracy"
    acc = ascend_extract(ASCEND_ACC, log)
    assert (acc == "" and summary[acc_key] == "") or acc == summary[acc_key] + "%"
    if loss_file is not None:
        losses = ascend_extract(ASCEND_LOSS, log).splitlines()
        assert losses and all(x.startswith("(") and x.endswith(")") for x in losses)
        assert [x[1:-1] for x in losses] == loss_file.read_text().split()
        assert losses[-1][1:-1] == summary["ActualLoss"]


@pytest.fixture(scope="module")
def h_run(veri_root):
    """train_full_1p.sh: keypoints + multitask + heatmaps, AMP + channels_last as the script sets them."""
    out = TEST_DIR / "output" / "5"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script("train_full_1p.sh", f"--data_path={veri_root}", "--device_id=5", *H_ARGS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r


@pytest.fixture(scope="module")
def eval_run(h_run, veri_root):
    """train_eval_1p.sh on the last checkpoint of h_run (input size: the checkpoint's, 64x64)."""
    out, _ = h_run
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    r = run_script("train_eval_1p.sh", f"--data_path={veri_root}", f"--pth_path={ckpt}", "--device_id=5",
                   "--batch_size=16", "--workers=1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r


def test_full_1p_heatmaps_summary_checkpoint_and_learning(h_run, veri_root):
    out, r = h_run
    s, keys = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    assert keys == SUMMARY_KEYS
    assert s["CaseName"] == "PAMTRI_for_PyTorch_bs8_1p_acc" and s["RankSize"] == "1" and s["GlobalBatchSize"] == "8"
    assert float(s["ActualFPS"]) > 0 and float(s["TrainingTime"]) == pytest.approx(8000 / float(s["ActualFPS"]),
                                                                                    abs=0.01)
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in r.stdout
    log = (out / "train_5.log").read_text()
    assert "Batch: 8 images per step = 1 process(es) x 8 (2 ids x 4)" in log
    maps = [x.split()[1].rstrip("%") for x in log.splitlines() if x.startswith("mAP: ")]
    assert len(maps) == EPOCHS and s["TrainAccuracy"] == maps[-1]  # CI reads the last evaluation, as printed
    assert log.count("Rank-48 : ") == EPOCHS and "Rank-49" not in log and "Color classification accuracy: " in log
    assert "Fps_sum_avg : " in log and re.search(r"^Epoch: \[4\]\[(\d+)/\1\]\tTime", log, re.M)
    chance = chance_map(veri_root)
    assert 0.1 < chance < 0.25
    assert float(maps[-1]) / 100 > chance + 0.30, (maps, chance)  # untrained features score about chance + 0.15
    # checkpoints hold plain data only: a bare weights_only load reads them
    ck = torch.load(out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar", map_location="cpu", weights_only=True)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 39  # RGB + 36 heatmaps
    assert ck["epoch"] == EPOCHS - 1 and ck["config"]["keyptaware"] and ck["config"]["multitask"]
    assert ck["args"]["batch_size"] == 8 and ck["args"]["train_batch"] == 8 and isinstance(ck["args"], dict)
    assert (out / CKPT_SUB / "best_model.pth.tar").is_file()
    # no progress bar in a test-script log (stdout is not a terminal)
    assert "\r" not in log and "\u2588" not in log and "it/s" not in log
    # metrics.jsonl beside the checkpoints: a row per logged step (--print-freq 1: every step), one per epoch with
    # the evaluation block's figures (the log prints them in % with 2 decimals)
    rows = read_rows(out / CKPT_SUB / "metrics.jsonl")
    assert all(set(r) == ROW_KEYS for r in rows)
    steps = [r["step"] for r in rows if r["kind"] == "step"]
    assert steps == list(range(1, ck["global_step"] + 1))
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, EPOCHS + 1)) and epochs[-1]["step"] == ck["global_step"]
    assert set(epochs[-1]["metrics"]) == {"mAP", "rank1", "rank5", "color_acc", "type_acc"}
    assert [round(r["metrics"]["mAP"] * 100, 2) for r in epochs] == [float(m) for m in maps]
    colours = [float(x.split()[-1].rstrip("%")) for x in log.splitlines() if x.startswith("Color classification")]
    assert [round(r["metrics"]["color_acc"] * 100, 2) for r in epochs] == colours
    assert epochs[0]["lr"] == pytest.approx(3e-3) and epochs[-1]["losses"]["loss"] > 0
    assert all(r["images_per_sec"] > 0 for r in epochs)


def test_resume_inside_an_epoch_is_exact(h_run, tmp_path):
    """From the full run's end-of-epoch-1 checkpoint, stop 7 steps into epoch 2, resume from that checkpoint and
    finish epoch 2: the weights equal the uninterrupted run's bit for bit."""
    out, _ = h_run
    cmd = shlex.split((out / "train_5.log").read_text().splitlines()[0].lstrip("+ "))
    args = [a for a in cmd[2:] if not a.startswith("--save-dir=")] + [f"--save-dir={tmp_path}", "--eval-step=0"]
    ep1 = out / CKPT_SUB / "checkpoint_ep1.pth.tar"
    r = run_py("train.py", *args, f"--resume={ep1}", "--max_steps=30", cwd=PAMTRI_DIR)  # epoch 1 has 23 steps
    assert r.returncode == 0, r.stderr[-3000:]
    part = sorted(tmp_path.glob("checkpoint_ep2_step*.pth.tar"))
    assert [p.name for p in part] == ["checkpoint_ep2_step7.pth.tar"]
    r = run_py("train.py", *args, "--max-epoch=2", "--resume", cwd=PAMTRI_DIR)  # bare: the folder's newest
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"--resume: resuming from {part[0]}" in r.stdout
    a = torch.load(out / CKPT_SUB / "checkpoint_ep2.pth.tar", map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / "checkpoint_ep2.pth.tar", map_location="cpu", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]
    # metrics.jsonl continued across the stop: every step of the two parts once, epoch 2 once (the partial row of
    # the stopped part dropped), its loss the one the uninterrupted run wrote for epoch 2
    rows = read_rows(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(24, b["global_step"] + 1))
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [2]
    full = {r["step"]: r["losses"]["loss"] for r in read_rows(out / CKPT_SUB / "metrics.jsonl") if r["kind"] == "step"}
    assert all(r["losses"]["loss"] == pytest.approx(full[r["step"]], rel=1e-4) for r in rows if r["kind"] == "step")


def test_eval_1p_on_the_checkpoint(h_run, eval_run):
    out, _ = h_run
    _, r = eval_run
    train, _ = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs16_1p_eval.log")
    assert s["EvalAccuracy"] == train["TrainAccuracy"] and float(s["ActualFPS"]) > 0 and s["GlobalBatchSize"] == "16"
    assert "Final Eval Accuracy : " + s["EvalAccuracy"] in r.stdout
    eval_log, train_log = (out / "eval_5.log").read_text(), (out / "train_5.log").read_text()
    assert "input 64x64" in eval_log
    # trained with bf16 autocast, evaluated in fp32 both after the epoch and by eval.py: the whole block agrees
    assert "precision: autocast bfloat16" in train_log
    assert "Evaluation precision: fp32" in train_log and "Evaluation precision: fp32" in eval_log
    block = result_block(eval_log)
    assert len(block) == 1 + 48 + 2 and result_block(train_log)[-len(block):] == block


def test_ascend_extraction_lines_give_the_summary(h_run, eval_run):
    out, _ = h_run
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    check_ascend_lines(out / "train_5.log", s, out / "train_PAMTRI_for_PyTorch_bs8_1p_acc_loss.txt")
    e, _ = read_summary(out / "PAMTRI_for_PyTorch_bs16_1p_eval.log")
    assert ascend_extract(ASCEND_ACC, out / "eval_5.log") == e["EvalAccuracy"] + "%"


def test_failed_runs_leave_earlier_results_byte_identical(h_run, eval_run, veri_root, tmp_path):
    """Bad flags (caught by the script or by train.py), a missing and a malicious --pth_path: each ends with one
    line and exit 1, and every file of the earlier good runs stays byte-identical (only *.failed.log are new)."""
    out, _ = h_run
    before = digests(out)
    assert "PAMTRI_for_PyTorch_bs16_1p_eval.log" in before and "train_PAMTRI_for_PyTorch_bs8_1p_acc_loss.txt" in before
    data = f"--data_path={veri_root}"
    for bad, expected in (("--batch_size=0", "--batch_size=0: expected an integer >= 1"),
                          ("--batch_size=-4", "--batch_size=-4: expected an integer >= 1"),
                          ("--batch_size=abc", "--batch_size=abc: expected an integer >= 1"),
                          ("--epochs=0", "--epochs=0: expected an integer >= 1"),
                          ("--max_steps=-2", "--max_steps=-2: expected an integer >= 1")):
        r = run_script("train_full_1p.sh", data, "--device_id=5", bad)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"[Error] {expected}"], r.stderr
        assert digests(out) == before  # refused before anything was written
    marker = tmp_path / "pwned"
    evil = malicious_checkpoint(tmp_path / "evil.pth.tar", marker)
    for script, args, expected in (
            ("train_full_1p.sh", ["--lr=-1"], "Error: argument --lr: expected a number > 0, got -1"),
            ("train_eval_1p.sh", ["--batch_size=16", f"--pth_path={tmp_path / 'none.pth.tar'}"],
             f"Error: checkpoint not found: {tmp_path / 'none.pth.tar'}"),
            ("train_eval_1p.sh", ["--batch_size=16", f"--pth_path={evil}"],
             f"Error: refused to load checkpoint {evil}")):
        r = run_script(script, data, "--device_id=5", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith(expected), r.stderr
        after = digests(out)
        assert {k: after[k] for k in before} == before
        assert set(after) - set(before) <= {"train_5.failed.log", "eval_5.failed.log"}
    assert not marker.exists()


def test_checkpoint_of_an_earlier_version_loads(h_run, tmp_path):
    """Earlier versions stored the RNG states as raw tuples with numpy arrays: plain data, still loaded."""
    import random

    from multitasknet.checkpoints import load_model_for_eval

    out, _ = h_run
    ck = torch.load(out / CKPT_SUB / "checkpoint_ep1.pth.tar", map_location="cpu", weights_only=True)
    ck["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save(ck, tmp_path / "old.pth.tar")
    loaded = checkpoint.load(tmp_path / "old.pth.tar")
    checkpoint.set_rng_state(loaded["rng"])
    from argparse import Namespace

    args = Namespace(heatmapaware=None, segmentaware=None, height=None, width=None)
    _, _, cfg = load_model_for_eval(str(tmp_path / "old.pth.tar"), args)
    assert cfg["in_channels"] == 39 and (args.height, args.width) == (64, 64)


def test_eval_8p_shards_with_padding_give_the_same_result(h_run, veri_root):
    """3 processes: 8 queries and 48 gallery images split 3/3/2 and 16/16/16, with padding, then regathered."""
    out, _ = h_run
    train, _ = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    r = run_script("train_eval_8p.sh", f"--data_path={veri_root}", f"--pth_path={ckpt}", "--device_id=5",
                   "--batch_size=5", "--height=64", "--width=64", "--workers=0", RANK_SIZE="3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs5_3p_eval.log")
    assert s["EvalAccuracy"] == train["TrainAccuracy"] and s["RankSize"] == "3"
    assert s["GlobalBatchSize"] == "15"  # eval 8p: --batch_size is per device
    log = (out / "eval_5.log").read_text()
    assert "obtained 8-by-64 matrix" in log and "obtained 48-by-64 matrix" in log and log.count("mAP: ") == 1


def test_export_and_onnx_eval_match_pytorch(h_run, veri_root, tmp_path, capsys):
    """The card's commands: export.py (--root, --heatmapaware True), run_eval_ascend.sh CKPT DATA (the Ascend
    order) and run_onnx_eval_gpu.sh (onnxruntime): the ONNX result block equals PyTorch's in fp32."""
    out, _ = h_run
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    load_entry("export.py").main(["--root", str(veri_root), "--ckpt_path", str(ckpt), "--heatmapaware", "True",
                                  f"--file_name={tmp_path / 'mtn'}"])
    assert "onnxruntime parity: max abs diff" in capsys.readouterr().out and (tmp_path / "mtn.onnx").is_file()
    r = run_card("run_eval_ascend.sh", ckpt, veri_root, "0", "h", "--test-batch=16", "--workers=0", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "eval_ascend.log").read_text() == r.stdout
    block = result_block(r.stdout)
    assert len(block) == 1 + 48 + 2
    r = run_card("run_onnx_eval_gpu.sh", veri_root, tmp_path / "mtn.onnx", "0", "h", "--test-batch=16",
                 "--workers=0", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "eval_onnx_gpu.log").is_file() and result_block(r.stdout) == block


def test_performance_1p_segments(veri_root):
    """The performance script: its own checkpoint folder, FPS and loss but no accuracy, the Ascend lines agree."""
    out = TEST_DIR / "output" / "6"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script("train_performance_1p.sh", f"--data_path={veri_root}", "--device_id=6", "--max_steps=8",
                   "--batch_size=8", "--segmentaware", *TINY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_perf.log")
    assert float(s["ActualFPS"]) > 0 and s["ActualLoss"] and s["TrainAccuracy"] == "" and s["GlobalBatchSize"] == "8"
    assert [p.name for p in out.iterdir() if p.is_dir()] == [CKPT_SUB + "_perf"]  # never the full run's folder
    ck = torch.load(out / (CKPT_SUB + "_perf") / "checkpoint_ep1_step8.pth.tar", map_location="cpu",
                    weights_only=True)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 16  # RGB + 13 segments
    assert not ck["config"]["keyptaware"] and ck["config"]["multitask"]  # the scripts' recipe: NVIDIA/Ascend port
    check_ascend_lines(out / "train_6.log", s, out / "train_PAMTRI_for_PyTorch_bs8_1p_perf_loss.txt")


def test_full_8p_two_processes_report_the_saved_checkpoints_metric(veri_root):
    """RANK_SIZE=2, global batch 16 (8 per process), stopped inside epoch 1 by --max_steps and evaluated: the
    ranks' BatchNorm statistics differ, rank 0's are broadcast before the evaluation, so train_eval_1p.sh on the
    saved checkpoint prints exactly the summary's accuracy (and the whole result block)."""
    out = TEST_DIR / "output" / "7"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script("train_full_8p.sh", f"--data_path={veri_root}", "--device_id=7", "--batch_size=16", "--epochs=1",
                   "--max_steps=8", "--segmentaware", *TINY, RANK_SIZE="2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s, _ = read_summary(out / "PAMTRI_for_PyTorch_bs16_2p_acc.log")
    assert s["RankSize"] == "2" and s["BatchSize"] == "16" and s["GlobalBatchSize"] == "16"
    assert float(s["ActualFPS"]) > 0 and s["TrainAccuracy"]
    log = (out / "train_7.log").read_text()
    assert "Batch: 16 images per step = 2 process(es) x 8 (2 ids x 4)" in log
    assert "2 processes x 8 images per step: lr 0.0003 scaled (sqrt) to 0.000424264" in log
    steps = [x for x in log.splitlines() if x.startswith("Epoch: [1][")]
    n = int(re.match(r"Epoch: \[1\]\[1/(\d+)\]", steps[0]).group(1))
    assert 10 <= n <= 12 and len(steps) == 8  # 23-24 rounds of 8 dealt to 2 ranks; rank 0 prints, once each
    check_ascend_lines(out / "train_7.log", s, out / "train_PAMTRI_for_PyTorch_bs16_2p_acc_loss.txt")
    ckpt = out / (CKPT_SUB + "_8p") / "checkpoint_ep1_step8.pth.tar"
    r = run_script("train_eval_1p.sh", f"--data_path={veri_root}", f"--pth_path={ckpt}", "--device_id=7",
                   "--batch_size=16", "--workers=0")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    e, _ = read_summary(out / "PAMTRI_for_PyTorch_bs16_1p_eval.log")
    assert e["EvalAccuracy"] == s["TrainAccuracy"]
    block = result_block((out / "eval_7.log").read_text())
    assert len(block) == 1 + 48 + 2 and result_block(log)[-len(block):] == block

"""End-to-end: the real PAMTRI/test/*.sh and scripts/*.sh on a tiny VeRi with heatmaps and segments."""
import re
import shlex
import shutil

import numpy as np
import pytest
import torch
from multitasknet.evaluation import evaluate_rank
from multitasknet.veri import VeRi

from .conftest import PAMTRI_DIR, TINY, load_entry, read_summary, run_py, run_script

TEST_DIR = PAMTRI_DIR / "test"
CKPT_SUB = "densenet121-xent-htri-veri-multitask"
EPOCHS = 4
H_ARGS = ["--epochs=%d" % EPOCHS, "--batch_size=8", "--heatmapaware", "--keyptaware", "--lr=3e-3", *TINY]


def result_block(text):
    return [x for x in text.splitlines() if x.startswith(("mAP: ", "Rank-", "Color ", "Type "))]


def chance_map(root):
    """Expected mAP of a random ranking on this query/gallery (same junk rule)."""
    v = VeRi(str(root), splits=("query", "test"), verbose=False)
    g = torch.Generator().manual_seed(0)
    return float(np.mean([evaluate_rank(torch.rand(len(v.query), len(v.gallery), generator=g), v.query.vids,
                                        v.gallery.vids, v.query.camids, v.gallery.camids)[1] for _ in range(200)]))


@pytest.fixture(scope="module")
def h_run(veri_root):
    """train_full_1p.sh: keypoints + multitask + heatmaps, AMP + channels_last as the script sets them."""
    out = TEST_DIR / "output" / "5"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script(TEST_DIR / "train_full_1p.sh", f"--data_path={veri_root}", "--device_id=5", *H_ARGS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r


def test_full_1p_heatmaps_summary_checkpoint_and_learning(h_run, veri_root):
    out, r = h_run
    s = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    assert list(s) == ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
                       "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    assert s["CaseName"] == "PAMTRI_for_PyTorch_bs8_1p_acc" and s["RankSize"] == "1"
    assert float(s["ActualFPS"]) > 0 and float(s["TrainingTime"]) == pytest.approx(8000 / float(s["ActualFPS"]),
                                                                                    abs=0.01)
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in r.stdout
    log = (out / "train_5.log").read_text()
    maps = [float(x.split()[1].rstrip("%")) for x in log.splitlines() if x.startswith("mAP: ")]
    assert len(maps) == EPOCHS and float(s["TrainAccuracy"]) == maps[-1]  # CI reads the last evaluation
    assert log.count("Rank-48 : ") == EPOCHS and "Rank-49" not in log and "Color classification accuracy: " in log
    assert "Fps_sum_avg : " in log and re.search(r"^Epoch: \[4\]\[(\d+)/\1\]\tTime", log, re.M)
    chance = chance_map(veri_root)
    assert 0.1 < chance < 0.25
    assert maps[-1] / 100 > chance + 0.30, (maps, chance)  # untrained features score about chance + 0.15
    ck = torch.load(out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar", map_location="cpu", weights_only=False)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 39  # RGB + 36 heatmaps
    assert ck["epoch"] == EPOCHS - 1 and ck["config"]["keyptaware"] and ck["config"]["multitask"]
    assert (out / CKPT_SUB / "best_model.pth.tar").is_file()


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
    r = run_py("train.py", *args, "--max-epoch=2", f"--resume={part[0]}", cwd=PAMTRI_DIR)
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(out / CKPT_SUB / "checkpoint_ep2.pth.tar", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "checkpoint_ep2.pth.tar", map_location="cpu", weights_only=False)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]


def test_eval_1p_on_the_checkpoint(h_run, veri_root):
    out, _ = h_run
    train = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    r = run_script(TEST_DIR / "train_eval_1p.sh", f"--data_path={veri_root}", f"--pth_path={ckpt}", "--device_id=5",
                   "--batch_size=16", "--workers=1")  # input size: the checkpoint's (64x64)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = read_summary(out / "PAMTRI_for_PyTorch_bs16_1p_eval.log")
    assert s["EvalAccuracy"] == train["TrainAccuracy"] and float(s["ActualFPS"]) > 0
    assert "Final Eval Accuracy : " + s["EvalAccuracy"] in r.stdout
    eval_log, train_log = (out / "eval_5.log").read_text(), (out / "train_5.log").read_text()
    assert "input 64x64" in eval_log
    # trained with bf16 autocast, evaluated in fp32 both after the epoch and by eval.py: the whole block agrees
    assert "precision: autocast bfloat16" in train_log
    assert "Evaluation precision: fp32" in train_log and "Evaluation precision: fp32" in eval_log
    block = result_block(eval_log)
    assert len(block) == 1 + 48 + 2 and result_block(train_log)[-len(block):] == block


def test_eval_8p_shards_with_padding_give_the_same_result(h_run, veri_root):
    """3 processes: 8 queries and 48 gallery images split 3/3/2 and 16/16/16, with padding, then regathered."""
    out, _ = h_run
    train = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    r = run_script(TEST_DIR / "train_eval_8p.sh", f"--data_path={veri_root}", f"--pth_path={ckpt}", "--device_id=5",
                   "--batch_size=5", "--height=64", "--width=64", "--workers=0", RANK_SIZE="3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = read_summary(out / "PAMTRI_for_PyTorch_bs5_3p_eval.log")
    assert s["EvalAccuracy"] == train["TrainAccuracy"] and s["RankSize"] == "3"
    log = (out / "eval_5.log").read_text()
    assert "obtained 8-by-64 matrix" in log and "obtained 48-by-64 matrix" in log and log.count("mAP: ") == 1


def test_export_and_onnx_eval_match_pytorch(h_run, veri_root, tmp_path, capsys):
    """export.py, then the card's run_onnx_eval_gpu.sh (onnxruntime) agrees with eval.py in fp32."""
    out, _ = h_run
    ckpt = out / CKPT_SUB / f"checkpoint_ep{EPOCHS}.pth.tar"
    load_entry("export.py").main([f"--ckpt_path={ckpt}", "--heatmapaware=True", f"--file_name={tmp_path / 'mtn'}"])
    load_entry("eval.py").main([f"--root={veri_root}", f"--ckpt_path={ckpt}", "--test-batch=16", "--height=64",
                                "--width=64", "--workers=0", "--device=cpu"])
    printed = capsys.readouterr().out
    assert "onnxruntime parity: max abs diff" in printed and (tmp_path / "mtn.onnx").is_file()
    r = run_script(PAMTRI_DIR / "scripts" / "run_onnx_eval_gpu.sh", str(veri_root), str(tmp_path / "mtn.onnx"), "0",
                   "h", "--test-batch=16", "--workers=0", cwd=tmp_path, DEVICE_TARGET="CPU")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "eval_onnx_gpu.log").is_file()

    assert len(result_block(printed)) == 1 + 48 + 2 and result_block(r.stdout) == result_block(printed)


def test_full_1p_segments(veri_root):
    out = TEST_DIR / "output" / "6"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script(TEST_DIR / "train_full_1p.sh", f"--data_path={veri_root}", "--device_id=6", "--epochs=1",
                   "--max_steps=8", "--batch_size=8", "--segmentaware", *TINY)  # stops inside the epoch, evaluates
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = read_summary(out / "PAMTRI_for_PyTorch_bs8_1p_acc.log")
    assert float(s["TrainAccuracy"]) > 0 and float(s["ActualFPS"]) > 0 and s["ActualLoss"]
    ck = torch.load(out / CKPT_SUB / "checkpoint_ep1_step8.pth.tar", map_location="cpu", weights_only=False)
    assert ck["state_dict"]["base.conv0.weight"].shape[1] == 16  # RGB + 13 segments
    assert not ck["config"]["keyptaware"] and ck["config"]["multitask"]


def test_performance_8p_with_two_processes(veri_root):
    out = TEST_DIR / "output" / "7"
    shutil.rmtree(out, ignore_errors=True)
    r = run_script(TEST_DIR / "train_performance_8p.sh", f"--data_path={veri_root}", "--device_id=7",
                   "--batch_size=16", "--max_steps=12", *TINY, RANK_SIZE="2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = read_summary(out / "PAMTRI_for_PyTorch_bs16_2p_perf.log")
    assert s["RankSize"] == "2" and s["CaseName"] == "PAMTRI_for_PyTorch_bs16_2p_perf"
    assert float(s["ActualFPS"]) > 0 and s["TrainAccuracy"] == ""  # no evaluation in performance runs
    log = (out / "train_7.log").read_text()
    assert "2 processes x 8 images per step: lr 0.0003 scaled (sqrt) to 0.000424264" in log
    steps = [x for x in log.splitlines() if x.startswith("Epoch: [1][")]
    n = int(re.match(r"Epoch: \[1\]\[1/(\d+)\]", steps[0]).group(1))
    assert 10 <= n <= 12 and len(steps) == n  # 23-24 rounds of 8 dealt to 2 ranks; rank 0 prints, once each
    assert (out / CKPT_SUB / "checkpoint_ep1.pth.tar").is_file()

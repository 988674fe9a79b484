import subprocess
import sys
from pathlib import Path

import pytest

from common.summary import case_name, summarize

LOG = """\
2026-01-01_00:00:00, Step 1/3 in Ep 1, 0.50s, datatime:0.1, batchtime:0.500000, FPS:64.00, loss:2.5000
 * FPS@all 100.000
 * FPS@all 300.000
 Acc: 0.5000, Prec: 0.1, Rec: 0.2, F1: 0.3
2026-01-01_00:00:01, Step 2/3 in Ep 2, 0.50s, datatime:0.1, batchtime:0.250000, FPS:128.00, loss:1.2500
 Acc: 0.7652, Prec: 0.1, Rec: 0.2, F1: 0.3
"""
PATTERNS = dict(fps_pattern=r"\* FPS@all ([0-9.]+)", acc_pattern=r"Acc: ([0-9.]+)", loss_pattern=r"loss:([0-9.]+)")


def test_case_name():
    assert case_name("DeepMar_ID0096_for_PyTorch", 2048, 8, "acc") == "DeepMar_ID0096_for_PyTorch_bs2048_8p_acc"


def test_summary_values_by_hand():
    rows, losses = summarize(LOG, network="Net", rank_size=1, batch_size=256, mode="acc", e2e=42.4,
                             device_type="x86_64", global_batch_size=256, **PATTERNS)
    d = dict(rows)
    assert [k for k, _ in rows] == ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName",
                                    "ActualFPS", "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    assert d["ActualFPS"] == "200.000"          # mean of 100 and 300
    assert d["TrainingTime"] == "1280.00"       # 256 * 1000 / 200
    assert d["ActualLoss"] == "1.2500"          # last loss, as the log wrote it
    assert d["TrainAccuracy"] == "0.7652"       # last Acc
    assert d["E2ETrainingTime"] == "42" and d["GlobalBatchSize"] == "256"
    assert losses == ["2.5000", "1.2500"]


def test_number_text_is_kept_and_fps_tail():
    log = " * FPS@all 10\n * FPS@all 20\n * FPS@all 60\n Acc: 0.1150\nloss:0.50\n"
    rows, _ = summarize(log, network="N", rank_size=2, batch_size=8, mode="acc", e2e=1, fps_tail=2,
                        global_batch_size=16, **PATTERNS)
    d = dict(rows)
    assert d["TrainAccuracy"] == "0.1150" and d["ActualLoss"] == "0.50"
    assert d["ActualFPS"] == "40.000"            # mean of the last two: (20 + 60) / 2
    assert d["GlobalBatchSize"] == "16"
    rows, _ = summarize(log, network="N", rank_size=1, batch_size=8, mode="acc", e2e=1, fps_reduce="last",
                        **PATTERNS)
    assert dict(rows)["ActualFPS"] == "60"       # a single value keeps its text


def test_unmeasured_values_are_empty():
    rows, _ = summarize("nothing here\n", network="Net", rank_size=2, batch_size=8, mode="eval", e2e=None,
                        **PATTERNS)
    d = dict(rows)
    assert d["ActualFPS"] == "" and d["TrainingTime"] == "" and d["EvalAccuracy"] == "" and d["E2EEvalTime"] == ""


def test_compile_time_sums_first_two():
    rows, _ = summarize(LOG, network="N", rank_size=1, batch_size=1, mode="perf", e2e=1,
                        compile_pattern=r"batchtime:([0-9.]+)", **PATTERNS)
    assert dict(rows)["CompileTime"] == "0.7500"


@pytest.mark.e2e
def test_cli_writes_files_and_final_lines(tmp_path):
    log = tmp_path / "train_0.log"
    log.write_text(LOG)
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "common" / "summary.py"), "--log", str(log),
                        "--out_dir", str(tmp_path), "--network", "Net", "--rank_size", "1", "--batch_size", "256",
                        "--mode", "acc", "--e2e", "10", "--rc", "0",
                        "--fps_pattern", PATTERNS["fps_pattern"], "--acc_pattern", PATTERNS["acc_pattern"],
                        "--loss_pattern", PATTERNS["loss_pattern"]], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["------------------ Final result ------------------",
                                     "Final Performance images/sec : 200.000",
                                     "Final Train Accuracy : 0.7652",
                                     "E2E Training Duration sec : 10"]
    summary = (tmp_path / "Net_bs256_1p_acc.log").read_text().splitlines()
    assert "ActualFPS = 200.000" in summary and "TrainAccuracy = 0.7652" in summary
    assert (tmp_path / "train_Net_bs256_1p_acc_loss.txt").read_text().split() == ["2.5000", "1.2500"]


@pytest.mark.e2e
def test_cli_failure_writes_nothing(tmp_path):
    log = tmp_path / "l.log"
    log.write_text("FPS 5\nTraceback\n")
    (tmp_path / "N_bs4_1p_perf.log").write_text("ActualFPS = 123\n")   # an earlier good run's summary
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "common" / "summary.py"), "--log", str(log), "--out_dir",
                        str(tmp_path), "--network", "N", "--rank_size", "1", "--batch_size", "4", "--mode", "perf",
                        "--rc", "3", "--fps_pattern", "FPS ([0-9.]+)"], capture_output=True, text=True)
    assert r.returncode == 3 and "no summary written" in r.stderr
    assert (tmp_path / "N_bs4_1p_perf.log").read_text() == "ActualFPS = 123\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["N_bs4_1p_perf.log", "l.log"]

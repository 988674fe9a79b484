"""End to end: the real test/*.sh scripts, train.py, eval.py and export.py on demo data."""
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from alignedreid_runs import FULL_8P_ARGS, TINY, Run, script_run

from common.metrics_file import read_rows
from common.testing import ascend_extract, digests, malicious_checkpoint, run_on_terminal, run_script

pytestmark = pytest.mark.e2e  # every test here runs a script or a program in a subprocess

MODEL_DIR = Path(__file__).resolve().parents[1]
PY = sys.executable
METRIC = re.compile(r"^\[mAP: ([0-9.]+)%\], \[cmc1: ([0-9.]+)%\].*$", re.M)
REPORTED_HEADER = "=========> Reported result: Global Distance without re-ranking <========="

# the Ascend test scripts' extraction lines (spec section 7), verbatim
ASCEND_FPS = ("grep -a 'FPS' $log | awk -F \" \" '{print $5}' | awk -F \",\" '{print $1}' | tail -n 5 "
              "| awk '{sum+=$1} END {print sum/NR}'")
ASCEND_ACC = ("train_accuracy=`grep -a 'cmc1' $log | awk 'END {print}' | awk -F \" \" '{print $4}' "
              "| awk -F \",\" '{print $1}'`; echo ${train_accuracy%\\%*}")
ASCEND_LOSS = "grep Ep $log | awk -F \"loss\" '{print $NF}' | awk -F \" \" '{print $1}'"
ASCEND_TIME = "awk -vbs=$BS -vfps=$FPS 'BEGIN{printf \"%.2f\\n\", bs*1000/fps}'"


def metrics_rows(folder):
    """The rows of the metrics.jsonl in a run (checkpoint) folder."""
    path = Path(folder) / "metrics.jsonl"
    assert path.is_file(), path
    return read_rows(path)


def run_py(script, *args, device_id=99):
    env = dict(os.environ, ASCEND_DEVICE_ID=str(device_id))
    return subprocess.run([PY, str(MODEL_DIR / script), *args], cwd=MODEL_DIR, env=env,
                          capture_output=True, text=True, timeout=600)


def one_error_line(p, *needles):
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("Error: ", "[Error] ")), p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def perf_run(full_run, demo_data):
    """train_performance_1p.sh in the full run's device folder, with the card's parameter list
    (--addr --workers --total_epochs --ids_per_batch --base_lr --exp_decay_at_epoch --npu)."""
    before = digests(full_run.out)
    p = run_script(MODEL_DIR, "train_performance_1p.sh", f"--data_path={demo_data}", "--device_id=91",
                   "--addr=127.0.0.1", "--workers=0", "--total_epochs=2", "--ids_per_batch=8", "--base_lr=5e-4",
                   "--exp_decay_at_epoch=1", "--npu=91", "--max_steps=3", "--log_steps=1", *TINY, cwd=MODEL_DIR)
    return Run(p, full_run.out, "train_91.log", "AlignedReID_for_PyTorch_bs32_1p_perf"), before


@pytest.fixture(scope="module")
def eval_of_8p(full_8p_run, demo_data):
    """train_eval_1p.sh on the checkpoint folder of the RANK_SIZE=2 full run (the card's --pth_path form)."""
    run = script_run("train_eval_1p.sh", 92, f"--data_path={demo_data}",
                     f"--pth_path={full_8p_run.out / 'train_full_8p'}", "--workers=0",
                     case="AlignedReID_for_PyTorch_bs32_1p_eval")
    yield run
    shutil.rmtree(run.out, ignore_errors=True)


def test_full_1p_learns_and_writes_summary(full_run):
    s, keys = full_run.summary, full_run.keys
    assert keys == ["Network", "RankSize", "BatchSize", "GlobalBatchSize", "DeviceType", "CaseName", "ActualFPS",
                    "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy"]
    assert (s["Network"], s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == \
        ("AlignedReID_for_PyTorch", "1", "32", "32")
    log = full_run.log
    assert "batch 32 images per device (8 ids x 4 images) x 1 rank(s) = 32 images per step" in log
    epoch_fps = [float(x) for x in re.findall(r"^Ep \d+, [0-9.]+s, FPS ([0-9.]+),", log, re.M)]
    assert len(epoch_fps) == 4 and float(s["ActualFPS"]) == pytest.approx(sum(epoch_fps) / 4, abs=1e-3)
    assert float(s["TrainingTime"]) == pytest.approx(32 * 1000 / float(s["ActualFPS"]), abs=0.01)
    epoch_losses = re.findall(r"^Ep \d+, .*loss ([0-9.]+)$", log, re.M)
    assert len(epoch_losses) == 4 and s["ActualLoss"] == epoch_losses[-1]
    assert float(epoch_losses[-1]) < 0.5 * float(epoch_losses[0])
    # global, re-ranked, then the reported global line again: the last cmc1 line is the card's rank-1
    metrics = METRIC.findall(log)
    assert len(metrics) == 3 and metrics[2] == metrics[0] and metrics[1] != metrics[0]
    assert log.splitlines()[-2] == REPORTED_HEADER and s["TrainAccuracy"] == metrics[0][1]
    # chance: a query's 2-4 true matches among ~125 valid gallery images gives rank-1 of a few %
    assert float(metrics[0][1]) > 50 and float(metrics[0][0]) > 40
    assert "Final Train Accuracy : " + s["TrainAccuracy"] in full_run.proc.stdout
    # the checkpoint is in this script's own folder, is plain data, and follows the umask
    ckpt = full_run.out / "train_full_1p" / "ckpt.pth"
    ck = torch.load(ckpt, weights_only=True)
    assert ck["ep"] == 4 and len(ck["state_dicts"]) == 2 and "local_conv.weight" in ck["state_dicts"][0]
    assert ck["aligned_reid"]["args"]["resize_h_w"] == [128, 64] and ck["aligned_reid"]["args"]["batch_size"] == 32
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o666 & ~mask
    # a test-script log holds the Ascend lines only: no progress bar off a terminal
    assert not any(c in log for c in ("\r", "\u2588", "it/s", "step/s")), "progress bar in the log"
    # metrics.jsonl beside the checkpoint: a step row per logged step (every 2 of 4 per epoch), an epoch row
    # per epoch; the last one holds the test's scores, the reported rank-1 being the summary's
    rows = metrics_rows(ckpt.parent)
    assert set(rows[0]) == {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
    assert [(r["epoch"], r["step"]) for r in rows if r["kind"] == "step"] == [(e, 4 * e - 4 + k) for e in (1, 2, 3, 4)
                                                                           for k in (2, 4)]
    ep_rows = [r for r in rows if r["kind"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in ep_rows] == [(1, 4), (2, 8), (3, 12), (4, 16)]
    assert all(r["lr"] == pytest.approx(1e-3) and r["images_per_sec"] > 0 for r in rows)
    assert [f"{r['losses']['loss']:.4f}" for r in ep_rows] == epoch_losses
    assert all(r["losses"]["gL"] == r["losses"]["loss"] for r in rows)  # -glw 1, no other loss
    assert [r["metrics"] for r in ep_rows[:3]] == [{}, {}, {}]
    final = ep_rows[3]["metrics"]
    assert f"{final['rank1']:.2%}" == s["TrainAccuracy"] + "%" and f"{final['mAP']:.2%}" == metrics[0][0] + "%"
    assert f"{final['re-ranked_global_distance/rank1']:.2%}" == metrics[1][1] + "%"


def test_full_8p_two_ranks_global_batch_and_eval_of_its_default_checkpoint(full_8p_run, demo_data):
    s = full_8p_run.summary
    assert (s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == ("2", "32", "64")
    assert s["CaseName"] == "AlignedReID_for_PyTorch_bs32_2p_acc" and s["TrainAccuracy"]
    assert "x 2 rank(s) = 64 images per step" in full_8p_run.log
    # train_eval_8p.sh without --pth_path evaluates train_full_8p.sh's checkpoint of the same device id
    p = run_script(MODEL_DIR, "train_eval_8p.sh", f"--data_path={demo_data}", "--device_id=95", "--workers=0",
                   cwd=MODEL_DIR, RANK_SIZE=2)
    assert p.returncode == 0, p.stderr + p.stdout
    assert f"evaluating {full_8p_run.out / 'train_full_8p' / 'ckpt.pth'}" in p.stdout
    evaluated = METRIC.findall((full_8p_run.out / "eval_95.log").read_text())
    assert evaluated == METRIC.findall(full_8p_run.log)
    from common.testing import read_summary

    e, _ = read_summary(full_8p_run.out / "AlignedReID_for_PyTorch_bs32_2p_eval.log")
    assert e["EvalAccuracy"] == s["TrainAccuracy"] and e["GlobalBatchSize"] == "32"  # device 0 alone evaluates


def test_8p_summary_accuracy_is_the_saved_checkpoints_accuracy(full_8p_run, eval_of_8p):
    """RANK_SIZE=2: rank 0's BatchNorm statistics are given to every rank before the test, so the
    reported metric is the saved checkpoint's: train_eval_1p.sh on it gives exactly the same text."""
    assert eval_of_8p.summary["EvalAccuracy"] == full_8p_run.summary["TrainAccuracy"]
    assert METRIC.findall(eval_of_8p.log) == METRIC.findall(full_8p_run.log)


def test_ascend_extraction_lines_give_the_summarys_numbers(full_run, full_8p_run, perf_run, eval_of_8p, tmp_path):
    """Spec 7: the Ascend CI's grep/awk lines on our perf/full/eval logs read what the summary says.
    FPS: awk prints 6 significant digits, the summary 3 decimals (numerically equal). The
    accuracy keeps the log's text. Eval logs have no FPS line (Ascend's eval scripts report no FPS;
    our EvalFPS is the feature-extraction rate), so only their accuracy is compared."""
    perf, _ = perf_run
    for run in (full_run, full_8p_run, perf):
        log = tmp_path / f"{run.case}.log"
        log.write_text(run.log)
        s = run.summary
        fps_lines = [line for line in run.log.splitlines() if "FPS" in line]
        assert fps_lines and all(re.match(r"Ep \d+, [0-9.]+s, FPS [0-9.]+, ", line) for line in fps_lines)
        assert float(ascend_extract(ASCEND_FPS, log)) == pytest.approx(float(s["ActualFPS"]), rel=1e-5, abs=1e-3)
        assert ascend_extract(ASCEND_ACC, log) == s["TrainAccuracy"]
        # every line with 'Ep' ends with its loss, so the Ascend loss file is ours, line for line
        ep_lines = [line for line in run.log.splitlines() if "Ep" in line]
        assert ep_lines and all(re.search(r" loss [0-9.]+$", line) for line in ep_lines)
        ours = (run.out / f"train_{run.case}_loss.txt").read_text().split()
        assert ascend_extract(ASCEND_LOSS, log).split() == ours and ours[-1] == s["ActualLoss"]
        assert len(ours) > len(re.findall(r"^Ep ", run.log, re.M))  # step lines too, as Ascend's grep reads
        env_line = f"BS={s['BatchSize']}; FPS={s['ActualFPS']}; "
        assert ascend_extract(env_line + ASCEND_TIME, log) == s["TrainingTime"]
    assert perf.summary["TrainAccuracy"] == "" and "final test skipped" in perf.log  # no cmc1 line: both empty
    assert full_run.summary["TrainAccuracy"] and full_8p_run.summary["TrainAccuracy"]
    log = tmp_path / "eval.log"
    log.write_text(eval_of_8p.log)
    assert ascend_extract(ASCEND_ACC, log) == eval_of_8p.summary["EvalAccuracy"]
    assert "FPS" not in eval_of_8p.log


def test_performance_1p_card_flags_and_its_own_checkpoint_folder(perf_run, full_run):
    run, before = perf_run
    s = run.summary
    # --ids_per_batch=8 (a card flag) -> 32 images per device: train.py resolved it, the summary says so
    assert (s["BatchSize"], s["GlobalBatchSize"], s["RankSize"]) == ("32", "32", "1")
    assert float(s["ActualFPS"]) > 0 and s["TrainAccuracy"] == "" and float(s["ActualLoss"]) > 0
    assert "precision autocast bfloat16" in run.log and "stopped after --max_steps 3" in run.log
    assert (run.out / "train_performance_1p" / "ckpt.pth").is_file()
    # the full run's checkpoint, summary and loss file are untouched by the perf run
    after = digests(full_run.out)
    for f in ("train_full_1p/ckpt.pth", f"{full_run.case}.log", f"train_{full_run.case}_loss.txt"):
        assert after[f] == before[f]


def test_performance_8p_two_ranks(demo_data):
    run = script_run("train_performance_8p.sh", 94, f"--data_path={demo_data}", "--ids_per_batch=8",
                     "--max_steps=3", *TINY, case="AlignedReID_for_PyTorch_bs32_2p_perf", RANK_SIZE="2")
    s = run.summary
    assert (s["RankSize"], s["BatchSize"], s["GlobalBatchSize"]) == ("2", "32", "64") and float(s["ActualFPS"]) > 0
    assert "x 2 rank(s) = 64 images per step" in run.log and len(re.findall(r"^Ep 1,", run.log, re.M)) == 1
    assert (run.out / "train_performance_8p" / "ckpt.pth").is_file()
    shutil.rmtree(run.out, ignore_errors=True)


def test_max_restarts_a_killed_worker_ends_like_the_uninterrupted_run(full_8p_run, demo_data):
    """--max_restarts=1 with rank 1 SIGKILLed after step 6 (epoch 2 of 2; the test hook of train.py):
    torchrun restarts the job, it resumes from the epoch-1 checkpoint and ends with the same weights."""
    run = script_run("train_full_8p.sh", 96, f"--data_path={demo_data}", "--max_restarts=1", *FULL_8P_ARGS,
                     case="AlignedReID_for_PyTorch_bs32_2p_acc", RANK_SIZE=2, ALIGNEDREID_TEST_KILL_AT="1:6")
    assert "[test hook] rank 1 kills itself after step 6" in run.log
    assert "restart 1 of the job: resuming from" in run.log and "1 epoch(s) done, 0 step(s) into epoch 2" in run.log
    a = torch.load(full_8p_run.out / "train_full_8p" / "ckpt.pth", weights_only=True)["state_dicts"]
    b = torch.load(run.out / "train_full_8p" / "ckpt.pth", weights_only=True)["state_dicts"]
    assert a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert run.summary["TrainAccuracy"] == full_8p_run.summary["TrainAccuracy"]
    # the metrics file (rank 0's) has each step and epoch once: the rows of the killed attempt after the
    # epoch-1 checkpoint were dropped, the replay wrote the same values as the uninterrupted run
    def values(folder):
        return [(r["kind"], r["epoch"], r["step"], r["lr"], r["losses"], r["metrics"]) for r in metrics_rows(folder)]

    got, want = values(run.out / "train_full_8p"), values(full_8p_run.out / "train_full_8p")
    assert [row[:3] for row in got] == [row[:3] for row in want]
    assert [row[:3] for row in want if row[0] == "epoch"] == [("epoch", 1, 4), ("epoch", 2, 8)]
    assert got == want
    shutil.rmtree(run.out, ignore_errors=True)


def test_resume_mid_epoch_ends_like_the_uninterrupted_run(full_run, tmp_path):
    cmd = shlex.split(full_run.log.splitlines()[0][2:])[2:]  # '+ python3 train.py ARGS'
    cmd = [a for a in cmd if not a.startswith("--exp_dir=")] + [f"--exp_dir={tmp_path}"]
    # a bare --resume before any checkpoint exists starts from scratch and says so
    first = run_py("train.py", *cmd, "--max_steps=10", "--resume")  # 2.5 epochs of 4 steps
    assert first.returncode == 0, first.stderr
    assert f"--resume: nothing to resume from yet ({tmp_path / 'ckpt.pth'} does not exist): starting from scratch" \
        in first.stdout
    assert "final test skipped" in first.stdout and not METRIC.findall(first.stdout)
    second = run_py("train.py", *cmd, "--resume")
    assert second.returncode == 0, second.stderr
    assert "2 epoch(s) done, 2 step(s) into epoch 3" in second.stdout
    assert METRIC.findall(second.stdout) == METRIC.findall(full_run.log)
    # the resumed run continued the metrics file: every step and epoch once, the steps' values the
    # uninterrupted run's (epoch 3's mean loss covers only the steps of the attempt that finished it)
    rows, full = metrics_rows(tmp_path), metrics_rows(full_run.out / "train_full_1p")
    assert [(r["kind"], r["epoch"], r["step"]) for r in rows] == [(r["kind"], r["epoch"], r["step"]) for r in full]
    steps = [(r["step"], r["lr"], r["losses"]) for r in rows if r["kind"] == "step"]
    assert steps == [(r["step"], r["lr"], r["losses"]) for r in full if r["kind"] == "step"]
    assert rows[-1]["metrics"] == full[-1]["metrics"]


def test_a_run_on_a_terminal_shows_the_progress_bar(demo_data, tmp_path):
    """Under a pseudo-terminal (120 columns) train.py draws the per-epoch bar (epoch, steps of the epoch, loss, img/s)
    and its log lines still appear; the test-script logs above have none of it."""
    rc, text = run_on_terminal([PY, MODEL_DIR / "train.py", f"--data_path={demo_data}", "--batch_size=32",
                                "--total_epochs=1", "--max_steps=2", "--log_steps=1", "--seed=0", *TINY,
                                f"--exp_dir={tmp_path}"], cwd=MODEL_DIR, env=dict(os.environ, ASCEND_DEVICE_ID="99"))
    assert rc == 0, text[-2000:]
    assert re.search(r"Ep 1/1: +50%\|.*\| 2/4 \[.*step/s, loss=[0-9.]+, img/s=[0-9.]+\]", text), text
    assert "\tStep 2/Ep 1," in text and "stopped after --max_steps 2 optimizer steps" in text


def test_export_onnx_parity(full_run, tmp_path):
    p = run_py("export.py", f"--pth_path={full_run.out / 'train_full_1p'}", f"--output={tmp_path / 'm.onnx'}")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m.onnx").stat().st_size > 0 and "max abs diff" in p.stdout


def test_mutual_learning_local_and_id_losses(demo_data, tmp_path):
    p = run_py("train.py", f"--data_path={demo_data}", "--batch_size=32", "--total_epochs=1", "--num_models=2",
               "-llw=1", "--local_dist_own_hard_sample=true", "-idlw=1", "-ldmlw=1", "--re_rank=false",
               f"--exp_dir={tmp_path}", "--seed=0", *TINY)
    assert p.returncode == 0, p.stderr
    ep = [line for line in p.stdout.splitlines() if line.startswith("Ep 1")]
    assert len(ep) == 2 and all(k in ep[0] for k in ("lL", "idL", "pmL", "gdmL", "ldmL", "FPS"))
    # per model: global, local and global+local distances; then model 1's global line again, last
    metrics = METRIC.findall(p.stdout)
    assert len(metrics) == 7 and metrics[6] == metrics[0] and "Computing scores for Global+Local Distance" in p.stdout
    assert "=========> Reported result of model 1: Global Distance without re-ranking" in p.stdout
    assert len(torch.load(tmp_path / "ckpt.pth", weights_only=True)["state_dicts"]) == 4


def test_failed_runs_are_one_line_and_leave_earlier_results_byte_identical(full_run, perf_run, demo_data, tmp_path):
    """Issue 9 section 2 through the scripts, and issue 10 section 1: every case ends with one line
    and exit 1, and no file of the earlier good runs of this device id changes."""
    before = digests(full_run.out)
    data = f"--data_path={demo_data}"
    cases = [  # (script, args, expected text of the one line)
        ("train_full_1p.sh", ["--batch_size=0"], "--batch_size=0: expected an integer >= 1"),
        ("train_full_1p.sh", ["--batch_size=-4"], "--batch_size=-4: expected an integer >= 1"),
        ("train_full_1p.sh", ["--batch_size=abc"], "--batch_size=abc: expected an integer >= 1"),
        ("train_full_1p.sh", ["--epochs=0"], "--epochs=0: expected an integer >= 1"),
        ("train_performance_1p.sh", ["--max_steps=-2"], "--max_steps=-2: expected an integer >= 1"),
        ("train_full_1p.sh", ["--ids_per_batch=0"], "argument --ids_per_batch: expected an integer >= 1, got 0"),
        ("train_full_1p.sh", ["--batch_size=30"], "--batch_size 30 (images per device) is not a multiple of"),
        ("train_full_1p.sh", ["--base_lr=-1", *TINY], "argument --base_lr: expected a number > 0, got -1"),
        ("train_eval_1p.sh", [f"--pth_path={tmp_path / 'none.pth'}", "--workers=0"], "checkpoint not found"),
        ("train_eval_1p.sh", [f"--pth_path={tmp_path / 'evil.pth'}", "--workers=0"], "refused to load checkpoint"),
    ]
    marker = tmp_path / "ran"
    malicious_checkpoint(tmp_path / "evil.pth", marker,
                         wrap=lambda payload: {"state_dicts": [{"base.conv1.weight": payload}], "ep": 1, "scores": 0})
    for script, args, needle in cases:
        p = run_script(MODEL_DIR, script, data, "--device_id=91", *args, cwd=MODEL_DIR)
        one_error_line(p, needle)
        assert "Final" not in p.stdout
    assert not marker.exists()
    after = digests(full_run.out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) <= {"train_91.failed.log", "eval_91.failed.log"}


def test_card_commands_end_with_one_line_that_says_what_to_do(tmp_path):
    """The card's commands typed with a wrong --data_path (issue 11); the happy paths are the runs above."""
    p = run_script(MODEL_DIR, "train_performance_1p.sh", "--data_path=/data/xxx/", "--device_id=97", cwd=MODEL_DIR)
    one_error_line(p, "data_path does not exist: /data/xxx")
    p = run_script(MODEL_DIR, "train_eval_8p.sh", "--device_id=97", cwd=MODEL_DIR)
    one_error_line(p, 'para "data_path" must be config')
    raw = tmp_path / "Market-1501-v15.09.15"  # the raw download instead of the prepared folder
    (raw / "bounding_box_train").mkdir(parents=True)
    p = run_script(MODEL_DIR, "train_full_8p.sh", f"--data_path={raw}", "--device_id=97", cwd=MODEL_DIR, RANK_SIZE=1)
    one_error_line(p, "partitions.pkl not found", "run tools/transform_market1501.py")
    shutil.rmtree(MODEL_DIR / "test" / "output" / "97", ignore_errors=True)


def test_make_demo_data_cli_prints_data_path_last(tmp_path):
    p = run_py("tools/make_demo_data.py", str(tmp_path / "d"), "--num_train_ids=4", "--num_test_ids=3")
    assert p.returncode == 0, p.stderr
    last = p.stdout.strip().splitlines()[-1]
    assert last == str(tmp_path / "d" / "market1501") and (Path(last) / "partitions.pkl").is_file()

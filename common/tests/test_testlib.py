"""The shell contract of test/*.sh, exercised through a fake model folder."""
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from common.testing import digests, read_summary, script_env

pytestmark = pytest.mark.e2e  # every test here runs the shared script body through bash

ROOT = Path(__file__).resolve().parents[2]

FAKE_TRAIN = f"""\
import os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from common.distributed import whole_line_output
whole_line_output()  # as distributed.init does under torchrun: the ranks share this log
print("argv", sys.argv[1:])
print(f"rank {{os.environ.get('RANK', '-')}} world {{os.environ.get('WORLD_SIZE', '-')}}")
if "--fail" in sys.argv:
    sys.exit(3)
if "--user_error" in sys.argv:
    print("some progress line")
    print("Error: argument --lr: expected a number > 0, got -1", file=sys.stderr)
    sys.exit(1)
if "--crash_first_time" in sys.argv and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
    print("worker crashed", flush=True)
    sys.exit(5)
if "--sleep" in sys.argv:
    print("sleeping", flush=True)
    time.sleep(60)
print("Step 1 loss:0.5")
if os.environ.get("RANK", "0") == "0":
    print(f" * FPS@all 50.0 restarts={{os.environ.get('TORCHELASTIC_RESTART_COUNT', '-')}}")
    print(" Acc: 0.25")
"""


def make_model(tmp_path, rank_size="1", mode="perf", scope="global", default_pth=None):
    model = tmp_path / "Fake"
    (model / "test").mkdir(parents=True)
    (model / "train.py").write_text(FAKE_TRAIN)
    pth = f'zoo_default_pth_path() {{ echo "$ZOO_OUT/{default_pth}"; }}' if default_pth else ""
    (model / "test" / "run.sh").write_text(textwrap.dedent(f"""\
        Network="Fake_for_PyTorch"; MODE={mode}; RANK_SIZE={rank_size}; batch_size=32; batch_scope={scope}; epochs=1
        source {ROOT}/common/scripts/testlib.sh
        {pth}
        zoo_parse_args "$@"
        zoo_setup
        zoo_run train.py --data_path="$data_path" --bs="$batch_size" --epochs="$epochs" ${{pth_path:+--pth=$pth_path}}
        zoo_summary --fps_pattern 'FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'loss:([0-9.]+)'
    """))
    return model


def run(model, *args, env=None, cwd=None):
    return subprocess.run(["bash", str(model / "test" / "run.sh"), *args], capture_output=True, text=True,
                          env=script_env(**(env or {})), cwd=cwd or model, timeout=120)


def test_missing_data_path(tmp_path):
    r = run(make_model(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip() == '[Error] para "data_path" must be config'


def test_keys_passthrough_and_outputs(tmp_path):
    model = make_model(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    # relative data path, run from the test/ folder, device id from the flag
    r = run(model, "--data_path=../../data", "--batch_size=8", "--epochs=3", "--lr=0.5", "--device_id=2",
            cwd=model / "test")
    assert r.returncode == 0, r.stderr
    out = model / "test" / "output" / "2"
    log = (out / "train_2.log").read_text()
    assert f"argv ['--data_path={data}', '--bs=8', '--epochs=3', '--lr=0.5']" in log
    assert r.stdout.splitlines()[-4:-1] == ["------------------ Final result ------------------",
                                            "Final Performance images/sec : 50.000", "Final Train Accuracy : 0.25"]
    s, keys = read_summary(out / "Fake_for_PyTorch_bs8_1p_perf.log")
    assert s["RankSize"] == "1" and s["TrainingTime"] == "160.00" and s["GlobalBatchSize"] == "8"
    assert keys[:4] == ["Network", "RankSize", "BatchSize", "GlobalBatchSize"]
    assert not (out / "train_2.running.log").exists()


def test_ascend_device_id_wins(tmp_path):
    model = make_model(tmp_path)
    r = run(model, f"--data_path={tmp_path}", "--device_id=2", env={"ASCEND_DEVICE_ID": "5"})
    assert r.returncode == 0, r.stderr
    assert (model / "test" / "output" / "5" / "train_5.log").exists()


def test_failed_run_leaves_the_good_results_byte_identical(tmp_path):
    model = make_model(tmp_path)
    out = model / "test" / "output" / "0"
    assert run(model, f"--data_path={tmp_path}").returncode == 0
    before = digests(out)
    assert sorted(before) == ["Fake_for_PyTorch_bs32_1p_perf.log", "train_0.log",
                              "train_Fake_for_PyTorch_bs32_1p_perf_loss.txt"]
    r = run(model, f"--data_path={tmp_path}", "--fail")
    assert r.returncode == 3 and "run failed with exit status 3" in r.stderr
    after = digests(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {"train_0.failed.log"}
    assert "argv" in (out / "train_0.failed.log").read_text()


def test_user_error_is_one_line(tmp_path):
    model = make_model(tmp_path)
    r = run(model, f"--data_path={tmp_path}", "--user_error")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["Error: argument --lr: expected a number > 0, got -1"]


def test_bad_common_keys_are_one_line_and_write_nothing(tmp_path):
    model = make_model(tmp_path)
    for arg, text in [("--batch_size=abc", "--batch_size=abc: expected an integer >= 1"),
                      ("--batch_size=0", "--batch_size=0: expected an integer >= 1"),
                      ("--batch_size=-4", "--batch_size=-4: expected an integer >= 1"),
                      ("--epochs=0", "--epochs=0: expected an integer >= 1"),
                      ("--max_steps=-2", "--max_steps=-2: expected an integer >= 1"),
                      ("--workers=x", "--workers=x: expected an integer >= 0"),
                      ("--max_restarts=-1", "--max_restarts=-1: expected an integer >= 0"),
                      ("--node_rank=2", "--node_rank=2: expected an integer in [0, 0]")]:
        r = run(model, f"--data_path={tmp_path}", arg)
        assert r.returncode == 1 and r.stderr == f"[Error] {text}\n", (arg, r.stderr)
    r = run(model, f"--data_path={tmp_path}", env={"RANK_SIZE": "two"})
    assert r.returncode == 0  # a 1p script sets RANK_SIZE=1 itself
    model8 = make_model(tmp_path / "p8", rank_size="${RANK_SIZE:-8}")
    r = run(model8, f"--data_path={tmp_path}", env={"RANK_SIZE": "two"})
    assert r.returncode == 1 and r.stderr == "[Error] RANK_SIZE=two: expected an integer >= 1\n"
    assert not (model8 / "test" / "output").exists()


def test_second_concurrent_run_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    model = make_model(tmp_path)
    first = subprocess.Popen(["bash", str(model / "test" / "run.sh"), f"--data_path={tmp_path}", "--sleep"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env(),
                             start_new_session=True)
    running = model / "test" / "output" / "0" / "train_0.running.log"
    deadline = time.time() + 60
    while not (running.exists() and "sleeping" in running.read_text()):
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.2)
    r = run(model, f"--data_path={tmp_path}")
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1
    assert f"test/output/0 is in use by another run (pid {first.pid}, run.sh" in r.stderr
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    r = run(model, f"--data_path={tmp_path}")
    assert r.returncode == 0, r.stderr


def test_per_device_batch_scope_gives_global_batch(tmp_path):
    model = make_model(tmp_path, rank_size="${RANK_SIZE:-8}", scope="per_device")
    r = run(model, f"--data_path={tmp_path}", "--batch_size=4", env={"RANK_SIZE": "2"})
    assert r.returncode == 0, r.stderr
    s, _ = read_summary(model / "test" / "output" / "0" / "Fake_for_PyTorch_bs4_2p_perf.log")
    assert s["BatchSize"] == "4" and s["GlobalBatchSize"] == "8"


def test_rank_size_from_environment_launches_torchrun(tmp_path):
    model = make_model(tmp_path, rank_size="${RANK_SIZE:-8}")
    r = run(model, f"--data_path={tmp_path}", "--nproc=8", env={"RANK_SIZE": "2"})
    assert r.returncode == 0, r.stderr
    log = (model / "test" / "output" / "0" / "train_0.log").read_text()
    assert "torch.distributed.run --nproc_per_node=2 --standalone" in log
    # a card flag that abbreviates a torchrun option reaches the script unchanged
    assert f"argv ['--data_path={tmp_path}', '--bs=32', '--epochs=1', '--nproc=8']" in log
    assert sorted(line for line in log.splitlines() if line.startswith("rank ")) == [
        "rank 0 world 2", "rank 1 world 2"]
    s, _ = read_summary(model / "test" / "output" / "0" / "Fake_for_PyTorch_bs32_2p_perf.log")
    assert s["CaseName"] == "Fake_for_PyTorch_bs32_2p_perf" and s["GlobalBatchSize"] == "32"


def test_max_restarts_restarts_a_crashed_job(tmp_path):
    model = make_model(tmp_path, rank_size="${RANK_SIZE:-8}")
    r = run(model, f"--data_path={tmp_path}", "--crash_first_time", "--max_restarts=1", env={"RANK_SIZE": "2"})
    assert r.returncode == 0, r.stderr
    log = (model / "test" / "output" / "0" / "train_0.log").read_text()
    assert "--max-restarts=1" in log and "worker crashed" in log and "FPS@all 50.0 restarts=1" in log
    r = run(model, f"--data_path={tmp_path}", "--crash_first_time", env={"RANK_SIZE": "2"})
    assert r.returncode != 0  # without restarts the crash ends the job


def test_eval_without_pth_path_uses_the_training_checkpoint(tmp_path):
    model = make_model(tmp_path, mode="eval", default_pth="exp/model_best.pth")
    r = run(model, f"--data_path={tmp_path}", "--device_id=3")
    expected = model / "test" / "output" / "3" / "exp" / "model_best.pth"
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"[Error] no --pth_path given and no checkpoint of the full training script of device 3 at {expected}: "
        "train first or pass --pth_path=FILE"]
    expected.parent.mkdir(parents=True)
    expected.write_bytes(b"x")
    r = run(model, f"--data_path={tmp_path}", "--device_id=3")
    assert r.returncode == 0, r.stderr
    assert f"[Info] no --pth_path given: evaluating {expected}" in r.stdout
    assert f"--pth={expected}" in (model / "test" / "output" / "3" / "eval_3.log").read_text()

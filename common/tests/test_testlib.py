"""The shell contract of test/*.sh, exercised through a fake model folder."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_TRAIN = f"""\
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from common.distributed import whole_line_output
whole_line_output()  # as distributed.init does under torchrun: the ranks share this log
print("argv", sys.argv[1:])
print(f"rank {{os.environ.get('RANK', '-')}} world {{os.environ.get('WORLD_SIZE', '-')}}")
if "--fail" in sys.argv:
    sys.exit(3)
print("Step 1 loss:0.5")
if os.environ.get("RANK", "0") == "0":
    print(" * FPS@all 50.0")
    print(" Acc: 0.25")
"""


def make_model(tmp_path, rank_size="1", mode="perf"):
    model = tmp_path / "Fake"
    (model / "test").mkdir(parents=True)
    (model / "train.py").write_text(FAKE_TRAIN)
    (model / "test" / "run.sh").write_text(textwrap.dedent(f"""\
        Network="Fake_for_PyTorch"; MODE={mode}; RANK_SIZE={rank_size}; batch_size=32; epochs=1
        source {ROOT}/common/scripts/testlib.sh
        zoo_parse_args "$@"
        zoo_setup
        zoo_run train.py --data_path="$data_path" --bs="$batch_size" --epochs="$epochs"
        zoo_summary --fps_pattern 'FPS@all ([0-9.]+)' --acc_pattern 'Acc: ([0-9.]+)' --loss_pattern 'loss:([0-9.]+)'
    """))
    return model


def run(model, *args, env=None, cwd=None):
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e["PATH"]
    e.pop("ASCEND_DEVICE_ID", None)
    e.update(env or {})
    return subprocess.run(["bash", str(model / "test" / "run.sh"), *args], capture_output=True, text=True,
                          env=e, cwd=cwd or model, timeout=120)


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
    summary = (out / "Fake_for_PyTorch_bs8_1p_perf.log").read_text()
    assert "RankSize = 1\n" in summary and "TrainingTime = 160.00\n" in summary


def test_ascend_device_id_wins(tmp_path):
    model = make_model(tmp_path)
    r = run(model, f"--data_path={tmp_path}", "--device_id=2", env={"ASCEND_DEVICE_ID": "5"})
    assert r.returncode == 0, r.stderr
    assert (model / "test" / "output" / "5" / "train_5.log").exists()


def test_failure_is_passed_on_without_claims(tmp_path):
    model = make_model(tmp_path)
    r = run(model, f"--data_path={tmp_path}", "--fail")
    assert r.returncode == 3
    summary = (model / "test" / "output" / "0" / "Fake_for_PyTorch_bs32_1p_perf.log").read_text()
    assert "ActualFPS = \n" in summary and "TrainAccuracy = \n" in summary


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
    assert "CaseName = Fake_for_PyTorch_bs32_2p_perf" in (
        model / "test" / "output" / "0" / "Fake_for_PyTorch_bs32_2p_perf.log").read_text()

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

POSE_DIR = Path(__file__).resolve().parents[1]
REPO = POSE_DIR.parents[1]
for p in (str(REPO), str(POSE_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

TINY_CFG = POSE_DIR / "experiments" / "veri" / "hrnet" / "demo_tiny.yaml"
MAKE_DEMO = POSE_DIR.parent / "tools" / "make_demo_data.py"


def run_py(*args, check=True, timeout=300):
    """Run a script with the test interpreter on one CPU thread; returns CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, *[str(a) for a in args]], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(POSE_DIR))
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def run_sh(script, *args, cwd, env_cfg=None, check=True, timeout=300):
    """Run one of scripts/*.sh on the CPU (DEVICE_TARGET=CPU) from `cwd`, python3 = the test interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", DEVICE_TARGET="CPU",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if env_cfg:
        env["POSE_CFG"] = str(env_cfg)
    proc = subprocess.run(["bash", str(POSE_DIR / "scripts" / script), *[str(a) for a in args]], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=str(cwd))
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def load_entry(script):
    """An entry script (train.py, eval.py, trans.py) as a module, to call its main() in-process: bad-input
    checks that fail before any work need no fresh interpreter."""
    name = "poseestnet_entry_" + Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, POSE_DIR / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture
def main_of(capsys):
    """main_of("train.py", *args) -> (exit status, stderr) of main(args) run in this process."""

    def call(script, *args):
        with pytest.raises(SystemExit) as exc:
            load_entry(script).main([str(a) for a in args])
        return exc.value.code, capsys.readouterr().err

    return call


@pytest.fixture(scope="session")
def py():
    return run_py


@pytest.fixture(scope="session")
def sh():
    return run_sh


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """A small raw demo VeRi plus the PoseEstNet data folder built from it."""
    out = tmp_path_factory.mktemp("pamtri_demo")
    proc = run_py(MAKE_DEMO, out, "--raw_only", "--train_ids", "8", "--test_ids", "4", "--cameras", "3",
                  "--cams_per_id", "2", "--per_cam", "2")
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    run_py(POSE_DIR / "tools" / "create_dataset.py", "--veri", out / "veri", "--annot", out / "annot",
           "--PoseData", out / "pose")
    return out


@pytest.fixture(scope="session")
def trained(demo_raw):
    """A 3-step tiny training run: (output folder, stdout)."""
    out = demo_raw / "train_a"
    proc = run_py("train.py", "--cfg", TINY_CFG, "--data_dir", demo_raw / "pose", "--output_dir", out,
                  "--device", "cpu", "--workers", "0", "--max_steps", "3", "--batch_size", "4", "--epochs", "1",
                  "PRINT_FREQ", "1")
    return out / "veri" / "pose_hrnet" / "demo_tiny", proc.stdout

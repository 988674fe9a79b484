import os
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
ROOT = MODEL_DIR.parent
for p in (str(ROOT), str(MODEL_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

# tiny settings: the real sizes are checked by key lists and parameter counts
TINY = ["--arch=resnet50_tiny", "--resize=(64,64)", "--workers=1", "--eval_batch_size=64"]


def script_env(**extra):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env.pop("ASCEND_DEVICE_ID", None)
    env.update(extra)
    return env


def run_script(name, *args, **env):
    return subprocess.run(["bash", str(MODEL_DIR / "test" / name), *args], capture_output=True, text=True,
                          env=script_env(**env), timeout=600)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("peta_demo")
    r = subprocess.run([sys.executable, str(MODEL_DIR / "tools" / "make_demo_data.py"), str(out / "peta"),
                        "--num_images", "1500"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])

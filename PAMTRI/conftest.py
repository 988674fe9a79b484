"""Fixtures shared by PAMTRI's two test suites (PoseEstNet/tests and MultiTaskNet/tests)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

PAMTRI_DIR = Path(__file__).resolve().parent
MAKE_DEMO = PAMTRI_DIR / "tools" / "make_demo_data.py"


@pytest.fixture(scope="session")
def demo_chain(tmp_path_factory):
    """tools/make_demo_data.py end to end, once per session: raw demo VeRi (8 train ids, 4 test ids, 3 cameras,
    2 per id, 4 images each: 8 MultiTaskNet steps of 8 per epoch, more than the 6 its FPS leaves out)
    -> create_dataset.py -> 1 PoseEstNet epoch -> trans.py. Returns (OUT, stdout)."""
    out = tmp_path_factory.mktemp("pamtri_chain") / "demo"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(MAKE_DEMO), str(out), "--train_ids", "8", "--test_ids", "4",
                           "--cameras", "3", "--cams_per_id", "2", "--per_cam", "4", "--pose_epochs", "1",
                           "--workers", "0"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout

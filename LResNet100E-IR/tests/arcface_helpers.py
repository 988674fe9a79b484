"""Helpers of the LResNet100E-IR tests (uniquely named: every model folder has a conftest)."""
import os
import subprocess
import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO = MODEL_DIR.parent

# Tiny network for end-to-end runs: 32 px faces, one unit per stage, narrow stages.
TINY = ["--input_size=32", "--units=1,1,1,1", "--widths=16,32,64,128", "--milestones=6"]


def script_env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("ASCEND_DEVICE_ID", None)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=kw.pop("cwd", MODEL_DIR), env=kw.pop("env", script_env()),
                          capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)


def read_summary(path):
    rows = {}
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition(" = ")
        rows[k] = v
    return rows

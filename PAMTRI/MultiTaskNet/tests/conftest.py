import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

MTN_DIR = Path(__file__).resolve().parents[1]   # PAMTRI/MultiTaskNet
PAMTRI_DIR = MTN_DIR.parent
ROOT = PAMTRI_DIR.parent
KEYS_DIR = ROOT.parent / "shared" / "spec" / "keys"
for p in (str(ROOT), str(MTN_DIR), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from .veri_fixture import make_veri  # noqa: E402

# Toy sizes for end-to-end runs; the real DenseNet-121 is checked by keys and parameter counts.
TINY = ["--arch=densenet_tiny", "--height=64", "--width=64", "--workers=1"]


def script_env(**extra):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env.pop("ASCEND_DEVICE_ID", None)
    env.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: one thread per process is faster and steadier
    env.update(extra)
    return env


def run_script(path, *args, cwd=None, **env):
    return subprocess.run(["bash", str(path), *args], capture_output=True, text=True, env=script_env(**env),
                          timeout=600, cwd=cwd)


def run_py(script, *args, cwd=None, **env):
    return subprocess.run([sys.executable, str(MTN_DIR / script), *args], capture_output=True, text=True,
                          env=script_env(**env), timeout=600, cwd=cwd)


def load_entry(script):
    """An entry script (train.py, eval.py, export.py) as a module, to call its main() in-process."""
    name = "mtn_" + Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, MTN_DIR / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def read_summary(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition(" = ")
        out[k] = v
    return out


@pytest.fixture(scope="session")
def veri_root(tmp_path_factory):
    """12 train ids x 16 images, 8 query ids (1 query, 1 same-camera junk, 4 positives each), with heatmaps and
    segments in the PoseEstNet trans.py format."""
    return Path(make_veri(str(tmp_path_factory.mktemp("veri")), train_ids=12, imgs_per_id=16, test_ids=8))

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

MTN_DIR = Path(__file__).resolve().parents[1]   # PAMTRI/MultiTaskNet
PAMTRI_DIR = MTN_DIR.parent
ROOT = PAMTRI_DIR.parent
for p in (str(ROOT), str(MTN_DIR), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from common import testing
from common.testing import script_env

from .veri_fixture import make_veri

# Toy sizes for end-to-end runs; the real DenseNet-121 is checked by keys and parameter counts.
TINY = ["--arch=densenet_tiny", "--height=64", "--width=64", "--workers=1"]
THREADS = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # 2 shared cores: one thread per process


def run_script(name, *args, cwd=None, **env):
    """PAMTRI/test/<name> (the CI scripts) through common.testing.run_script."""
    return testing.run_script(PAMTRI_DIR, name, *args, cwd=cwd, **{**THREADS, **env})


def run_card(name, *args, cwd=None, **env):
    """MultiTaskNet/scripts/<name> (the model card's wrappers) run as the card types them, on the CPU."""
    return subprocess.run(["bash", str(MTN_DIR / "scripts" / name), *map(str, args)], capture_output=True, text=True,
                          env=script_env(**{**THREADS, "DEVICE_TARGET": "CPU", **env}), timeout=600, cwd=cwd)


def run_py(script, *args, cwd=None, **env):
    return subprocess.run([sys.executable, str(MTN_DIR / script), *args], capture_output=True, text=True,
                          env=script_env(**{**THREADS, **env}), timeout=600, cwd=cwd)


def load_entry(script):
    """An entry script (train.py, eval.py, export.py) as a module, to call its main() in-process."""
    name = "mtn_" + Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, MTN_DIR / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture(scope="session")
def veri_root(tmp_path_factory):
    """12 train ids x 16 images, 8 query ids (1 query, 1 same-camera junk, 4 positives each), with heatmaps and
    segments in the PoseEstNet trans.py format."""
    return Path(make_veri(str(tmp_path_factory.mktemp("veri")), train_ids=12, imgs_per_id=16, test_ids=8))

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO = MODEL_DIR.parent
for p in (str(REPO), str(MODEL_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

DEMO_CLASSES = 10


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """Demo ImageNet folders (10 classes, 32 train / 8 val JPEGs each) and a scratch root."""
    root = tmp_path_factory.mktemp("hrnet_demo")
    res = subprocess.run([sys.executable, "tools/make_demo_data.py", str(root / "imagenet"), "--classes",
                          str(DEMO_CLASSES), "--train_per_class", "32", "--val_per_class", "8"],
                         cwd=MODEL_DIR, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = Path(res.stdout.strip().splitlines()[-1])
    return data, root


@pytest.fixture(scope="session")
def cli():
    """train.py / eval.py / export.py as modules (unique names, sys.path left as it was), so that
    tests call their main() in-process."""
    mods = {}
    saved = list(sys.path)
    try:
        for name in ("train", "eval", "export"):
            spec = importlib.util.spec_from_file_location(f"hrnet_{name}_cli", MODEL_DIR / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mods[name] = mod
    finally:
        sys.path[:] = saved
    return mods


@pytest.fixture
def call(capsys, monkeypatch):
    """call(main, argv) -> (exit status, stdout, stderr lines), run in the model folder."""
    monkeypatch.chdir(MODEL_DIR)

    def run(main, argv):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err.strip().splitlines()

    return run

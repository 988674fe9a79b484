"""Helpers of the AlignedReID tests that run the test scripts (a unique module name: the whole
suite imports every model's tests in one process)."""
import importlib.util
import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parents[1]


def load_module(relpath: str):
    """AlignedReID/<relpath> (train.py, eval.py, tools/x.py) imported under a name no other model
    folder uses (every model has a train.py and a tools/make_demo_data.py)."""
    name = "alignedreid_" + relpath.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, MODEL_DIR / relpath)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]

TINY = ["--arch=tiny", "--resize_h_w=128,64", "--workers=0"]
FULL_8P_ARGS = ["--batch_size=32", "--epochs=2", "--base_lr=1e-3", "--seed=0", "--log_steps=2", *TINY]


class Run:
    """One finished test-script run: its process, output folder, log text and summary."""

    def __init__(self, proc, out: Path, log_name: str, case: str):
        from common.testing import read_summary

        assert proc.returncode == 0, proc.stderr + proc.stdout
        self.proc, self.out, self.case = proc, out, case
        self.log_path = out / log_name
        self.log = self.log_path.read_text()  # later runs of the same device id replace the log file
        self.summary, self.keys = read_summary(out / f"{case}.log")


def script_run(name, device_id, *args, case, **env):
    """Run test/<name> on a fresh output folder test/output/<device_id>; a Run."""
    import shutil

    from common.testing import run_script

    out = MODEL_DIR / "test" / "output" / str(device_id)
    shutil.rmtree(out, ignore_errors=True)
    p = run_script(MODEL_DIR, name, *args, f"--device_id={device_id}", cwd=MODEL_DIR, **env)
    log = ("eval_" if "eval" in name else "train_") + f"{device_id}.log"
    return Run(p, out, log, case)

"""Helpers of the LResNet100E-IR tests (uniquely named: every model folder has a conftest)."""
import subprocess
from pathlib import Path

from common.testing import script_env

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO = MODEL_DIR.parent

# Tiny network for end-to-end runs: 32 px faces, one unit per stage, narrow stages.
TINY = ["--input_size=32", "--units=1,1,1,1", "--widths=16,32,64,128", "--milestones=6"]


def env(**extra):
    e = script_env(**extra)
    e.setdefault("OMP_NUM_THREADS", "2")
    return e


def run(cmd, **kw):
    """A command in the model folder with the test scripts' environment (RANK_SIZE=... via kw)."""
    extra = {k: kw.pop(k) for k in list(kw) if k.isupper()}
    return subprocess.run(cmd, cwd=kw.pop("cwd", MODEL_DIR), env=kw.pop("env", env(**extra)),
                          capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)


def one_error_line(r, prefix="Error: "):
    """A run that failed with exactly one line on stderr, starting with `prefix`; that line."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith(prefix), r.stderr[-2000:]
    return lines[0]


def load_module(filename):
    """train.py / eval.py / export.py of this model as a module with a unique name (every model
    folder has a train.py; the suite runs them all in one process)."""
    import importlib.util
    import sys

    name = "lresnet_" + Path(filename).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, MODEL_DIR / filename)
        module = importlib.util.module_from_spec(spec)
        saved = list(sys.path)
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path[:] = saved  # the scripts put this folder first; other models' tests must not see it
        sys.modules[name] = module
    return sys.modules[name]


def call_main(filename, argv, capsys):
    """main(argv) in this process: (exit status, stdout, stderr) - cheap, no interpreter start-up."""
    module = load_module(filename)
    capsys.readouterr()
    try:
        module.main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(code, err):
    """The single `Error: ...` line of a failed in-process main()."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), (code, err[-2000:])
    return lines[0]

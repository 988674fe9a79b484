"""Helpers shared by the test suites of every model folder (not used at run time).

- `run_script` / `script_env` / `read_summary`: drive a model's test/*.sh as a user would.
- `upstream_keys`: the upstream state_dict key lists, kept in this repo (keys/, gzip) so a
  fresh clone tests on its own.
- `ascend_extract`: run one of the Ascend scripts' grep/awk lines on a log.
- `run_on_terminal`: run a command with stdout/stderr on a pseudo-terminal (progress bars).
- `digests`: byte-level fingerprints of a folder, to show a run left files untouched.
- `malicious_checkpoint` / `malicious_pickle`: files whose unpickling would create a
  marker file, to prove that no load path runs code.
"""
import gzip
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS_DIR = Path(__file__).resolve().parent / "keys"


def script_env(**extra) -> dict:
    """The environment of a test script: this interpreter's python3 first on PATH and no
    inherited device id."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env.pop("ASCEND_DEVICE_ID", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_script(model_dir, name, *args, timeout=600, cwd=None, **env) -> subprocess.CompletedProcess:
    """`bash <model_dir>/test/<name> ARGS...` with captured text output."""
    return subprocess.run(["bash", str(Path(model_dir) / "test" / name), *map(str, args)], capture_output=True,
                          text=True, env=script_env(**env), cwd=cwd, timeout=timeout)


def read_summary(path) -> tuple[dict, list]:
    """A `<CaseName>.log` summary: ({key: value}, [keys in file order])."""
    rows = [line.split(" = ", 1) for line in Path(path).read_text().splitlines()]
    return {k: v for k, v in rows}, [k for k, _ in rows]


def upstream_keys(name: str) -> list[tuple[str, str]]:
    """[(key, shape string)] of keys/<name>.txt.gz, in state_dict order."""
    path = KEYS_DIR / (name if name.endswith(".txt") else name + ".txt")
    with gzip.open(str(path) + ".gz", "rt") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]


def state_dict_rows(state_dict) -> list[tuple[str, str]]:
    """The same (key, shape) rows for a live state_dict."""
    return [(k, str(tuple(v.shape))) for k, v in state_dict.items()]


def ascend_extract(command: str, log) -> str:
    """Run one Ascend extraction line with `$log` (and `$LOG`) set to `log`; its stdout, stripped."""
    env = dict(os.environ, log=str(log), LOG=str(log))
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60)
    return r.stdout.strip()


def run_on_terminal(cmd, cwd=None, env=None, columns=120, rows=24, timeout=600) -> tuple[int, str]:
    """Run `cmd` with stdout and stderr on a pseudo-terminal of `columns` x `rows` (a new pty has
    no size, where tqdm would draw nothing): (return code, everything it wrote)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def digests(folder) -> dict:
    """{relative path: sha256} of every file under `folder` (lock files excluded)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith(".run_lock"):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _Payload:
    """Unpickling this calls os.system: the marker file appears iff a loader ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def malicious_checkpoint(path, marker, wrap=None):
    """torch.save a checkpoint whose pickle would `touch marker`; `wrap(payload)` shapes it
    like a real checkpoint (default: a state_dict with the payload as a value)."""
    import torch

    payload = _Payload(marker)
    obj = wrap(payload) if wrap else {"state_dict": {"weight": payload}}
    torch.save(obj, str(path))
    return Path(path)


def malicious_pickle(path, marker, wrap=None, protocol=2):
    """A plain pickle that would `touch marker` when loaded with pickle.load."""
    payload = _Payload(marker)
    obj = wrap(payload) if wrap else {"data": payload}
    Path(path).write_bytes(pickle.dumps(obj, protocol=protocol))
    return Path(path)

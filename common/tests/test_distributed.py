import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common import distributed

ROOT = Path(__file__).resolve().parents[2]


def test_single_process_is_a_noop(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    d = distributed.init("cpu")
    assert (d.rank, d.world_size, d.enabled, d.is_main) == (0, 1, False, True)
    assert distributed.all_reduce_sum(2.5, d) == 2.5


@pytest.mark.e2e
def test_two_cpu_ranks_with_gloo(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        from common import distributed
        d = distributed.init("cpu")
        total = distributed.all_reduce_sum(d.rank + 1, d)
        g = distributed.all_gather_tensor(torch.tensor([d.rank * 10]), d)
        # BatchNorm statistics that differ per rank become rank 0's on every rank
        bn = torch.nn.BatchNorm1d(2)
        bn.running_mean.fill_(d.rank + 1.0)
        bn.num_batches_tracked.fill_(7 * (d.rank + 1))
        distributed.sync_buffers_from_main(bn, d)
        # both ranks share the pipe; init() made every printed line a single write
        print(f"rank={{d.rank}} world={{d.world_size}} sum={{total}} gather={{g.tolist()}} "
              f"bn={{bn.running_mean.tolist()}},{{int(bn.num_batches_tracked)}}")
        distributed.cleanup(d)
    """))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = sorted(line for line in r.stdout.splitlines() if line.startswith("rank="))
    assert lines == ["rank=0 world=2 sum=3.0 gather=[0, 10] bn=[1.0, 1.0],7",
                     "rank=1 world=2 sum=3.0 gather=[0, 10] bn=[1.0, 1.0],7"]


@pytest.mark.e2e
def test_workers_die_with_a_killed_launcher(tmp_path):
    """kill -9 of torchrun: the workers (parent-death signal set by init) are gone 10 s later."""
    import os
    import signal
    import time

    script = tmp_path / "worker.py"
    pids = tmp_path / "pids"
    pids.mkdir()
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from common import distributed
        d = distributed.init("cpu")
        open(os.path.join({str(pids)!r}, str(os.getpid())), "w").close()
        time.sleep(120)
    """))
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 "--nproc_per_node=2", str(script)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while len(os.listdir(pids)) < 2:
        assert time.time() < deadline and launcher.poll() is None
        time.sleep(0.2)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    time.sleep(10)
    alive = []
    for name in os.listdir(pids):
        try:
            os.kill(int(name), 0)
            alive.append(name)
        except ProcessLookupError:
            pass
    for name in alive:  # do not leave them behind even when the test fails
        os.kill(int(name), signal.SIGKILL)
    assert alive == []


class _Writes(io.RawIOBase):
    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def write(self, b):
        self.chunks.append(bytes(b))
        return len(b)


def test_whole_line_output_makes_each_printed_line_one_write(monkeypatch):
    raw = _Writes()
    # what `python -u` / PYTHONUNBUFFERED gives: a write-through text layer on a raw file
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
    print("FPS", 12.5)
    assert raw.chunks == [b"FPS", b" ", b"12.5", b"\n"]  # four writes another rank can split
    raw.chunks.clear()
    distributed.whole_line_output()
    print("FPS", 12.5)
    print("loss:", 0.25)
    assert raw.chunks == [b"FPS 12.5\n", b"loss: 0.25\n"]

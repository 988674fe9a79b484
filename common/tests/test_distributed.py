import io
import subprocess
import sys
import textwrap
from pathlib import Path

from common import distributed

ROOT = Path(__file__).resolve().parents[2]


def test_single_process_is_a_noop(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    d = distributed.init("cpu")
    assert (d.rank, d.world_size, d.enabled, d.is_main) == (0, 1, False, True)
    assert distributed.all_reduce_sum(2.5, d) == 2.5


def test_two_cpu_ranks_with_gloo(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        from common import distributed
        d = distributed.init("cpu")
        total = distributed.all_reduce_sum(d.rank + 1, d)
        g = distributed.all_gather_tensor(torch.tensor([d.rank * 10]), d)
        # both ranks share the pipe; init() made every printed line a single write
        print(f"rank={{d.rank}} world={{d.world_size}} sum={{total}} gather={{g.tolist()}}")
        distributed.cleanup(d)
    """))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = sorted(line for line in r.stdout.splitlines() if line.startswith("rank="))
    assert lines == ["rank=0 world=2 sum=3.0 gather=[0, 10]", "rank=1 world=2 sum=3.0 gather=[0, 10]"]


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

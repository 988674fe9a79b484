"""The per-run metrics file, terminal-only progress bars and the curve plotter."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.errors import UserError
from common.metrics_file import MetricsFile, read_rows

ROOT = Path(__file__).resolve().parents[2]


def _epoch_run(path, epochs, resume_step=None, resume_epoch=None, steps_per_epoch=2, crash_after_step=None):
    m = MetricsFile(path, resume_step=resume_step, resume_epoch=resume_epoch)
    start = (resume_epoch or 0) + 1
    for e in range(start, epochs + 1):
        for s in range(1, steps_per_epoch + 1):
            g = (e - 1) * steps_per_epoch + s
            m.step(e, g, lr=0.1, images_per_sec=10.0, loss=1.0 / g)
            if crash_after_step == g:
                return  # the process dies here: no epoch row, no close
        m.epoch(e, e * steps_per_epoch, lr=0.1, images_per_sec=9.0, losses={"loss": 0.5}, metrics={"acc": e / 10})
    m.close()


def test_resumed_run_has_each_step_and_epoch_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    # epochs 1-2 complete (checkpoint after epoch 2 = step 4), crash in epoch 3 after step 5
    _epoch_run(path, 3, crash_after_step=5)
    with open(path, "a") as f:
        f.write('{"kind": "step", "epo')  # a line cut short by kill -9
    _epoch_run(path, 4, resume_step=4, resume_epoch=2)
    rows = read_rows(path)
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(1, 9))
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3, 4]
    assert rows[-1]["metrics"] == {"acc": 0.4} and rows[0]["losses"] == {"loss": 1.0}
    walls = [r["wall_time"] for r in rows]
    assert walls == sorted(walls)


def test_fresh_run_replaces_and_other_ranks_write_nothing(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _epoch_run(path, 2)
    _epoch_run(path, 1)
    assert [r["epoch"] for r in read_rows(path) if r["kind"] == "epoch"] == [1]
    other = MetricsFile(tmp_path / "rank1" / "metrics.jsonl", enabled=False)
    other.step(1, 1, loss=1.0)
    other.close()
    assert not (tmp_path / "rank1").exists()


def test_schema(tmp_path):
    m = MetricsFile(tmp_path / "m.jsonl")
    m.step(1, 7, lr=0.01, images_per_sec=3.5, loss=0.25, triplet=float("nan"))
    m.close()
    row = json.loads((tmp_path / "m.jsonl").read_text())
    assert set(row) == {"kind", "epoch", "step", "wall_time", "lr", "images_per_sec", "losses", "metrics"}
    assert row["losses"] == {"loss": 0.25, "triplet": None} and row["step"] == 7


def test_tensorboard_missing_is_one_clear_line(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tb(name, *a, **k):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tb)
    with pytest.raises(UserError, match="--tensorboard needs the tensorboard package"):
        MetricsFile(tmp_path / "m.jsonl", tensorboard_dir=tmp_path / "tb")
    assert not (tmp_path / "m.jsonl").exists()


BAR_SCRIPT = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {str(ROOT)!r})
    from common.progress import Console
    c = Console()
    c.bar(5, "Ep 1/1")
    for i in range(5):
        c.update(loss=0.5, images_per_sec=12.0)
    c.log("Ep1 loss 0.5")
    c.close_bar()
    print("done")
""")


@pytest.mark.e2e
def test_no_bar_characters_off_a_terminal():
    r = subprocess.run([sys.executable, "-c", BAR_SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Ep1 loss 0.5\ndone\n" and r.stderr == ""


@pytest.mark.e2e
@pytest.mark.parametrize("columns", [100, 0])
def test_bar_on_a_pseudo_terminal(columns):
    """A terminal window, and a pseudo-terminal that reports no size (`script` without a terminal)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: stdout is the pty
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 30 if columns else 0, columns, 0, 0))
        os.execv(sys.executable, [sys.executable, "-c", BAR_SCRIPT])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert "Ep 1/1" in text and "5/5" in text and "loss=0.5000" in text and "img/s=12.0" in text
    assert "Ep1 loss 0.5" in text and "done" in text


def test_plot_overlays_two_runs(tmp_path, monkeypatch):
    import matplotlib.axes

    sys.path.insert(0, str(ROOT / "tools"))
    import plot_runs

    for name in ("a", "b"):
        _epoch_run(tmp_path / name / "metrics.jsonl", 2)
    labels = []
    real_plot = matplotlib.axes.Axes.plot

    def recording_plot(self, *args, **kwargs):
        labels.append(kwargs.get("label"))
        return real_plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
    written = plot_runs.plot(plot_runs.find_runs([f"lr0.1={tmp_path / 'a'}", f"lr0.01={tmp_path / 'b'}"]),
                             tmp_path / "png")
    assert sorted(p.name for p in written) == ["loss.png", "lr.png", "metrics.png", "throughput.png"]
    assert all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p in written)
    assert "lr0.1 loss" in labels and "lr0.01 loss" in labels
    assert labels.count("lr0.1") >= 3 and labels.count("lr0.01") >= 3  # lr, metric, throughput

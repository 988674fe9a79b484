"""Live progress on a terminal, plain log lines everywhere else.

A person watching a run in a terminal gets a tqdm bar per epoch (epoch, step, loss,
images/s, ETA); when stdout is not a terminal (the test scripts, CI, a log file) nothing
but the model's own log lines is written, so the Ascend greps see exactly what they expect.
Only the main rank draws. `Console.log` prints a log line above an active bar.
"""
import os
import sys


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Console:
    """The main rank's printer and progress bars; other ranks print nothing."""

    def __init__(self, is_main: bool = True, stream=None):
        self.is_main = is_main
        self.stream = stream or sys.stdout
        self.bars_enabled = is_main and _is_terminal(self.stream)
        self._bar = None

    def log(self, *args, **kwargs):
        if not self.is_main:
            return
        if self._bar is not None:
            self._bar.write(" ".join(str(a) for a in args), file=self.stream)
        else:
            print(*args, file=self.stream, flush=True, **kwargs)

    __call__ = log

    def bar(self, total: int, desc: str, initial: int = 0):
        """Start a bar for `total` steps (closes the previous one); a no-op off a terminal."""
        self.close_bar()
        if self.bars_enabled:
            from tqdm import tqdm

            # a pseudo-terminal without a size (`script` under no real terminal) reports 0 columns,
            # (and 0 rows), where tqdm would draw nothing: fall back to 100x30
            try:
                sized = os.get_terminal_size(self.stream.fileno()).columns > 0
            except (OSError, AttributeError, ValueError):
                sized = False
            self._bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream, dynamic_ncols=sized,
                             ncols=None if sized else 100, nrows=None if sized else 30, leave=False,
                             unit="step")
        return self

    def update(self, n: int = 1, loss=None, images_per_sec=None):
        if self._bar is None:
            return
        postfix = {}
        if loss is not None:
            postfix["loss"] = f"{float(loss):.4f}"
        if images_per_sec is not None:
            postfix["img/s"] = f"{float(images_per_sec):.1f}"
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(n)

    def close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Tee:
    """stdout copied to a log file (upstream's log_train.txt / stdout_*.txt): a terminal gets
    everything, the file gets whole lines only (a progress-bar frame, written with a carriage
    return, stays out of it)."""

    def __init__(self, stream, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.stream, self.file = stream, open(path, "a", encoding="utf-8", buffering=1)

    def write(self, text):
        self.stream.write(text)
        if "\r" not in text:
            self.file.write(text)

    def flush(self):
        self.stream.flush()
        self.file.flush()

    def isatty(self):  # Console draws its bar when the real stdout is a terminal
        return _is_terminal(self.stream)

    def fileno(self):
        return self.stream.fileno()

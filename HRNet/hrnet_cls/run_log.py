"""Upstream's logger layout (lib/utils/utils.py create_logger): bare lines on stdout, timestamped
lines in OUTPUT_DIR/<dataset>/<cfg>/<cfg>_<time>_<phase>.log; rank 0 only."""
import logging
import time
from pathlib import Path

from common.progress import Console


class _ConsoleHandler(logging.Handler):
    def __init__(self, console):
        super().__init__()
        self.console = console

    def emit(self, record):
        self.console.log(self.format(record))


class RunLog:
    """Upstream's create_logger: bare messages on stdout, `%(asctime)-15s %(message)s` in
    OUTPUT_DIR/<dataset>/<cfg>/<cfg>_<%Y-%m-%d-%H-%M>_<phase>.log. Only rank 0 says anything."""

    def __init__(self, final_output_dir: Path | None, cfg_name: str, phase: str, enabled: bool):
        self.enabled = enabled
        self.logger = logging.getLogger(f"hrnet_cls.{phase}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.logger.handlers.clear()
        self.file = None
        self.console = Console(enabled)  # bare lines on stdout, above a progress bar on a terminal
        if not enabled:
            return
        self.logger.addHandler(_ConsoleHandler(self.console))
        if final_output_dir is not None:
            final_output_dir.mkdir(parents=True, exist_ok=True)
            self.file = final_output_dir / f"{cfg_name}_{time.strftime('%Y-%m-%d-%H-%M')}_{phase}.log"
            handler = logging.FileHandler(self.file)
            handler.setFormatter(logging.Formatter("%(asctime)-15s %(message)s"))
            self.logger.addHandler(handler)

    def __call__(self, msg: str, console_only: bool = False):
        if not self.enabled:
            return
        if console_only:  # the port print()s these (step_time), outside its logger
            self.console.log(msg)
        else:
            self.logger.info(msg)
            for h in self.logger.handlers:
                h.flush()

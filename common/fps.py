"""FPS meter: images/second of the whole job, end to end, over steady-state steps."""
import time


class FpsMeter:
    """Times each step from the end of the previous one, so data loading is included.

    `global_batch` is the number of images one step consumes over all ranks. The first
    `warmup` steps of every epoch are excluded (compilation, cache warm-up, worker start).
    """

    def __init__(self, global_batch: int, warmup: int = 2):
        self.global_batch = int(global_batch)
        self.warmup = int(warmup)
        self.total_time = 0.0
        self.total_images = 0
        self.reset_epoch()

    def reset_epoch(self):
        self._last = time.perf_counter()
        self._step_in_epoch = 0
        self.epoch_time = 0.0
        self.epoch_images = 0

    def data_time(self) -> float:
        """Seconds since the previous step ended: call when the batch has arrived."""
        return time.perf_counter() - self._last

    def step(self, images: int | None = None) -> float:
        """Call at the end of a step; returns this step's seconds (the batch time)."""
        now = time.perf_counter()
        dt = now - self._last
        self._last = now
        self._step_in_epoch += 1
        n = self.global_batch if images is None else int(images)
        if self._step_in_epoch > self.warmup:
            self.epoch_time += dt
            self.epoch_images += n
            self.total_time += dt
            self.total_images += n
        return dt

    def rate(self, dt: float, images: int | None = None) -> float:
        n = self.global_batch if images is None else images
        return n / dt if dt > 0 else 0.0

    @property
    def epoch_fps(self) -> float | None:
        """None when every step of the epoch was warm-up (nothing measured)."""
        return self.epoch_images / self.epoch_time if self.epoch_time > 0 else None

    @property
    def fps(self) -> float | None:
        return self.total_images / self.total_time if self.total_time > 0 else None

    def describe(self) -> str:
        return f"first {self.warmup} steps of each epoch excluded"

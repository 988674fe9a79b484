"""Running averages for the per-step log lines (loss, batch time, accuracy)."""


class AverageMeter:
    """The current value and the average weighted by batch size."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.val = self.avg = self.sum = 0.0
        self.count = 0

    def update(self, val, n=1):
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n
        self.avg = self.sum / self.count if self.count else 0.0

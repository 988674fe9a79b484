"""Learning-rate schedules written once for the models that share them."""


def staircase_lr(base_lr: float, epoch: int, decay_at_epochs, factor: float) -> float | None:
    """The staircase of DeepMar's and AlignedReID's upstream (adjust_lr_staircase): at the start of
    the i-th (0-based) listed 1-based `epoch`, lr = base_lr * factor ** (i + 1); None on the other
    epochs (the lr is left as it is)."""
    decay_at_epochs = list(decay_at_epochs)
    if epoch not in decay_at_epochs:
        return None
    return base_lr * factor ** (decay_at_epochs.index(epoch) + 1)


def format_lr(lr: float) -> str:
    """The upstream logs' lr text: ten decimals, trailing zeros dropped (0.01 -> '0.01')."""
    return f"{lr:.10f}".rstrip("0")

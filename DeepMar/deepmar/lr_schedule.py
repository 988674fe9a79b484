"""Upstream's staircase lr (common.schedule.staircase_lr) over DeepMar's two parameter groups
(backbone: --finetuned_params_lr, classifier: --new_params_lr)."""
from common.schedule import staircase_lr


def staircase_lrs(epoch, base_lrs, decay_at_epochs, factor):
    """The lr of each group for 1-based `epoch` when it is a decay epoch, else None (lrs left unchanged)."""
    if epoch not in decay_at_epochs:
        return None
    return [staircase_lr(base, epoch, decay_at_epochs, factor) for base in base_lrs]


def lrs_at(epoch, base_lrs, decay_at_epochs, factor):
    """The staircase lrs in force during 1-based `epoch` (set at the last decay epoch <= epoch)."""
    passed = [e for e in decay_at_epochs if e <= epoch]
    if not passed:
        return list(base_lrs)
    return staircase_lrs(max(passed), base_lrs, decay_at_epochs, factor)

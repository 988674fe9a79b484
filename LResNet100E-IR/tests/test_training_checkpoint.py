"""train.py's checkpoint contents: the position a resume continues from, finished epoch or not."""
import argparse

import torch
from face_arcface.training_checkpoint import Position, is_ours, position, state

from common.amp import Amp


def _state(pos, finished_epoch):
    model, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 3)
    optimizer = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1)
    args = argparse.Namespace(lr=0.1, seed=1)
    return state(model, head, optimizer, Amp(False, torch.device("cpu")), args, {"net_mode": "ir"}, pos,
                 finished_epoch, acc=0.5)


def test_position_round_trip_mid_epoch_and_at_its_end():
    pos = Position(epoch=2, index=4, global_step=30)
    for loss in (1.0, 3.0):
        pos.add_loss(loss)
    mid = _state(pos, finished_epoch=False)
    assert is_ours(mid) and mid["config"] == {"lr": 0.1, "seed": 1} and mid["lfw_accuracy"] == 0.5
    assert position(mid) == Position(epoch=2, index=5, global_step=30, loss_sum=4.0, epoch_loss_sum=4.0,
                                     epoch_loss_steps=2)
    end = _state(pos, finished_epoch=True)
    assert position(end) == Position(epoch=3, index=0, global_step=30, loss_sum=4.0)
    pos.next_epoch()
    assert (pos.epoch, pos.index, pos.epoch_loss_sum, pos.epoch_loss_steps) == (3, 0, 0.0, 0)

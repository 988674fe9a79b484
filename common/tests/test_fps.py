from common import fps as fps_mod
from common.fps import FpsMeter


def test_fps_excludes_warmup_and_counts_data_time(monkeypatch):
    clock = iter([0.0,   # reset at construction
                  1.0,   # step 1 ends (warm-up, 1 s)
                  1.5,   # step 2 ends (0.5 s)
                  2.5])  # step 3 ends (1.0 s)
    monkeypatch.setattr(fps_mod.time, "perf_counter", lambda: next(clock))
    m = FpsMeter(global_batch=10, warmup=1)
    assert m.step() == 1.0
    assert m.step() == 0.5
    assert m.step() == 1.0
    # 20 images in 1.5 s after the single warm-up step
    assert abs(m.fps - 20 / 1.5) < 1e-12
    assert abs(m.epoch_fps - 20 / 1.5) < 1e-12


def test_nothing_measured_is_none():
    m = FpsMeter(global_batch=4, warmup=5)
    m.step()
    assert m.fps is None and m.epoch_fps is None


def test_average_meter_is_weighted_by_batch_size():
    from common.meters import AverageMeter

    m = AverageMeter()
    assert m.avg == 0.0
    m.update(2.0, n=3)
    m.update(4.0, n=1)
    assert (m.val, m.sum, m.count, m.avg) == (4.0, 10.0, 4, 2.5)
    m.reset()
    assert (m.sum, m.count) == (0.0, 0)

"""k-fold verification accuracy on distance sets small enough to do on paper."""
import numpy as np
import pytest
from face_arcface.verification import THRESHOLDS, evaluate, fold_bounds, kfold_accuracy, pair_distances


def test_threshold_grid_is_upstreams():
    assert len(THRESHOLDS) == 400 and THRESHOLDS[0] == 0 and THRESHOLDS[100] == 1.0
    assert THRESHOLDS[101] == pytest.approx(1.01) and THRESHOLDS[-1] == pytest.approx(3.99)


def test_folds_like_sklearn_kfold():
    assert fold_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]  # first n % k folds one larger
    assert fold_bounds(6000, 10)[0] == (0, 600)


def test_first_argmax_and_strict_less_by_hand():
    # pairs 0,1 same (dist .5, 1.0), pairs 2,3 different (dist 2, 3); 2 contiguous folds.
    # fold 1: train on {2,3} (both different): every threshold <= 2.0 is perfect, the FIRST is 0.00;
    #         test {0,1}: 0.5 < 0 and 1.0 < 0 are false -> both wrong -> 0.0
    # fold 2: train on {0,1} (both same): needs 1.0 < t (strict), first is t = 1.01;
    #         test {2,3}: 2 < 1.01, 3 < 1.01 false -> both right -> 1.0
    acc, thr = kfold_accuracy([0.5, 1.0, 2.0, 3.0], [True, True, False, False], nrof_folds=2)
    assert list(acc) == [0.0, 1.0]
    assert thr[0] == 0.0 and thr[1] == pytest.approx(1.01)


def test_three_folds_by_hand():
    # each train split contains a same pair at exactly 1.0 and different pairs at 3.0: t must exceed 1.0
    acc, thr = kfold_accuracy([1.0, 1.0, 3.0, 3.0, 1.0, 3.0], [True, True, False, False, True, False], 3)
    assert list(acc) == [1.0, 1.0, 1.0]
    assert thr == pytest.approx([1.01, 1.01, 1.01])


def test_pairs_and_squared_distance_by_hand():
    emb = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [0.6, 0.8], [0.6, -0.8]], dtype=np.float32)
    # pair 0: |(1,-1)|^2 = 2; pair 1: 0; pair 2: |(0, 1.6)|^2 = 2.56
    np.testing.assert_allclose(pair_distances(emb), [2.0, 0.0, 2.56], rtol=1e-6)
    acc, thr = evaluate(np.repeat(emb, 2, axis=0)[[0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11]],
                        [False, False, True, True, False, False], nrof_folds=2)
    assert acc == 1.0

"""Segment masks: the strict-convexity rule, rounding and the 64x64 image-frame squash."""
import numpy as np
import pytest
from poseestnet.segments import SEGMENTS, is_convex, round_half_even, segment_masks


@pytest.mark.parametrize("quad,expected", [
    ([(0, 0), (4, 0), (4, 4), (0, 4)], True),  # square, one winding
    ([(0, 0), (0, 4), (4, 4), (4, 0)], True),  # the other winding
    ([(0, 0), (4, 0), (1, 1), (0, 4)], False),  # dart: one reflex corner
    ([(0, 0), (4, 4), (4, 0), (0, 4)], False),  # bow-tie
    ([(0, 0), (2, 0), (4, 0), (2, 3)], False),  # three collinear points: a zero cross product
    ([(1, 1), (1, 1), (5, 1), (1, 5)], False),  # repeated point
])
def test_is_convex(quad, expected):
    assert is_convex(quad) is expected


def test_segment_table():
    assert len(SEGMENTS) == 13
    assert SEGMENTS[0] == (5, 15, 16, 17) and SEGMENTS[6] == (10, 11, 29, 28) and SEGMENTS[12] == (16, 17, 35, 34)
    # the two sides mirror each other: channels 3..5 are 0..2 with k -> k+18
    for a, b in zip(SEGMENTS[0:3], SEGMENTS[3:6]):
        assert tuple(k + 18 for k in a) == b


def test_round_half_even_like_python():
    assert [round_half_even(v) for v in (2.5, 3.5, -0.5, 1.499, 1.501)] == [2, 4, 0, 1, 2]


def test_masks_fill_convex_quads_in_image_frame():
    w, h = 128, 64  # squashed to 64x64: x halves, y unchanged
    xy = np.full((36, 2), 10.0)  # every other quad degenerate (all points equal) -> zeros
    xy[5], xy[15], xy[16], xy[17] = (20, 10), (60, 10), (60, 40), (20, 40)  # channel 0: a rectangle
    masks = segment_masks(xy, w, h)
    assert masks.shape == (13, 64, 64) and masks.dtype == np.uint8
    assert masks[1:].sum() == 0
    m = masks[0]
    # filled rectangle x 20..60, y 10..40 (edges included) -> x 10..30 after halving
    assert m[25, 20] == 255 and m[12, 12] == 255
    assert m[5, 20] == 0 and m[25, 40] == 0 and m[45, 20] == 0 and m[25, 5] == 0


def test_non_convex_quad_gives_zeros():
    xy = np.zeros((36, 2))
    xy[5], xy[15], xy[16], xy[17] = (0, 0), (40, 0), (10, 10), (0, 40)  # dart
    assert segment_masks(xy, 64, 64)[0].sum() == 0

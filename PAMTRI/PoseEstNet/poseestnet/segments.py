"""The 13 vehicle segment masks that MultiTaskNet reads: quads of keypoints, filled when the
(integer-rounded) quad is strictly convex, in the image frame squashed to 64x64."""
import cv2
import numpy as np

# channel s = region s+1 of NVlabs/PAMTRI figures/keypoints_segments.png (0-based keypoints)
SEGMENTS = [(5, 15, 16, 17), (5, 6, 12, 15), (6, 10, 11, 12),
            (23, 33, 34, 35), (23, 24, 30, 33), (24, 28, 29, 30),
            (10, 11, 29, 28), (11, 12, 30, 29), (12, 13, 31, 30),
            (13, 14, 32, 31), (14, 15, 33, 32), (15, 16, 34, 33),
            (16, 17, 35, 34)]
SEGMENT_SIZE = (64, 64)


def is_convex(points) -> bool:
    """True when the cross products of consecutive edges at every vertex (wrap-around
    included) share one non-zero sign."""
    pts = [(int(p[0]), int(p[1])) for p in points]
    n = len(pts)
    sign = 0
    for k in range(n):
        (x0, y0), (x1, y1), (x2, y2) = pts[k - 2], pts[k - 1], pts[k]
        cross = (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1)
        s = (cross > 0) - (cross < 0)
        if s == 0 or (sign and s != sign):
            return False
        sign = s
    return True


def round_half_even(v: float) -> int:
    """Python's round(): halves go to the even integer, as upstream's int(round(float(x)))."""
    return int(round(v))


def segment_masks(xy, width, height, size=SEGMENT_SIZE):
    """xy: 36 (x, y) keypoints in image pixels (already the values written to the pose CSV).
    -> uint8 array (13, size_h, size_w)."""
    kpts = [(round_half_even(float(x)), round_half_even(float(y))) for x, y in xy]
    out = np.zeros((len(SEGMENTS), size[1], size[0]), dtype=np.uint8)
    for s, quad in enumerate(SEGMENTS):
        poly = [kpts[i] for i in quad]
        if is_convex(poly):
            canvas = np.zeros((height, width), dtype=np.uint8)
            cv2.fillPoly(canvas, np.array([poly], dtype=np.int32), 255)
            out[s] = cv2.resize(canvas, size)
    return out

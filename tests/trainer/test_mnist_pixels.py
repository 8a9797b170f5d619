"""benchmarks/probes/mnist_pixels.py: the background-haze figure counts faint pixels away from the strokes only."""

from __future__ import annotations

import numpy as np

from benchmarks.probes.mnist_pixels import HAZE_LEVEL, NEAR_PX, background_haze, soft_ink_share


def _digit() -> np.ndarray:
    """uint8 [1, 28, 28, 1]: a vertical stroke at columns 13-14, rows 6-21, on a black ground."""
    image = np.zeros((1, 28, 28, 1), np.uint8)
    image[0, 6:22, 13:15, 0] = 255
    return image


def test_a_clean_digit_has_no_haze():
    assert background_haze(_digit()) == (0.0, 0.0)


def test_a_faint_pixel_far_from_the_stroke_is_haze():
    image = _digit()
    image[0, 2, 2, 0] = HAZE_LEVEL + 30
    mean, share = background_haze(image)
    # background: every pixel more than NEAR_PX from the 16 x 2 stroke (Chebyshev distance)
    background = 28 * 28 - (16 + 2 * NEAR_PX) * (2 + 2 * NEAR_PX)
    assert share == 1 / background
    assert mean == (HAZE_LEVEL + 30) / background


def test_grey_edges_next_to_the_stroke_are_not_haze():
    image = _digit()
    image[0, 6:22, 12, 0] = 90  # anti-aliased edge, 1 px from the stroke
    image[0, 6:22, 16, 0] = 60  # 2 px away: still the stroke's surround
    assert background_haze(image) == (0.0, 0.0)


def test_soft_ink_counts_the_strokes_grey_edges():
    image = _digit()  # 32 ink pixels at 255
    image[0, 6:22, 12, 0] = 90  # 16 edge pixels
    assert soft_ink_share(image) == 16 / 48
    assert soft_ink_share(_digit()) == 0.0

"""Fine detail of a verification canvas: what is left once the shading is taken out."""

from __future__ import annotations

import numpy as np

# Side of the box whose mean is the shading: 5 of a 32 px thumbnail is about a sixth of the
# picture, wide enough to hold a lesion's spot or a pore pattern in the detail, narrow enough
# that a cheek's fall-off in light is all in the shading.
SHADING_BOX = 5


def high_pass(
    values: np.ndarray, mask: np.ndarray, size: int, box: int = SHADING_BOX
) -> np.ndarray:
    """values (a size x size canvas, flattened) less their local mean over the masked pixels.

    Two smooth skin close-ups lit the same way correlate at 0.94 on their shading alone
    (bench/dedup_quality.py: a cheek from two different photos, turned by 10° and 15°), while
    their spots and pores do not correlate at all (0.12-0.19). A copy keeps both.
    """
    from scipy.ndimage import uniform_filter  # imagehash depends on scipy

    v, m = values.reshape(size, size), mask.reshape(size, size)
    local = uniform_filter(v * m, box, mode="constant")
    weight = uniform_filter(m, box, mode="constant")
    return ((v - local / np.maximum(weight, 1e-6)) * m).ravel().astype(np.float32)

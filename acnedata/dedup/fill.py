"""Fill: the black corners and edges a rotation or shift adds, which say nothing about the photo."""

from __future__ import annotations

import numpy as np

# Grey level at or below which a pixel touching the border counts as fill: a rotation fills with
# black (0), and a JPEG or a box-resized thumbnail keeps it within a few levels of that.
FILL_LEVEL = 8


def border_fill(pixels: np.ndarray, level: int = FILL_LEVEL, grow: int = 1) -> np.ndarray | None:
    """(h, w) bool: the near-black pixels connected to the image's border, grown by `grow`
    pixels over the blended edge a resize leaves between fill and picture; None if none.

    Two different photos turned by the same angle share their black corners exactly; on
    smooth skin close-ups those corners alone made their thumbnails correlate above the
    verification threshold (bench/dedup_quality.py: 8 false pairs between 2 pairs of photos).
    """
    dark = pixels <= level
    if not (dark[0].any() or dark[-1].any() or dark[:, 0].any() or dark[:, -1].any()):
        return None
    from scipy import ndimage  # imagehash depends on scipy; imported here to keep import light

    labels, _ = ndimage.label(dark)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(edge[edge > 0])
    fill = np.isin(labels, touching)
    return ndimage.binary_dilation(fill, iterations=grow) if grow else fill

"""MixUp and CutMix on training batches, seeded: soft labels and example weights mixed alike."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


class BatchMix:
    """Mix each batch with a shuffled copy of itself: MixUp, CutMix, or half the batches each.

    MixUp blends whole images with λ ~ Beta(α, α); CutMix pastes a box covering 1 - λ of the
    image. Labels and per-example weights are blended with the same λ (the box's true area for
    CutMix), so a class-balanced weight follows the pixels it belongs to.
    """

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, seed: int = 0) -> None:
        self.mixup = float(mixup)
        self.cutmix = float(cutmix)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _beta(self, alpha: float) -> Any:
        # Beta(α, α) from two Gammas: keras.random has gamma, not beta
        a = keras.random.gamma((), alpha, seed=self.seed_generator)
        b = keras.random.gamma((), alpha, seed=self.seed_generator)
        return a / (a + b)

    def mix_batch(self, x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        """(images, soft labels, weights) → the same, mixed; a tf.data map function."""
        import tensorflow as tf

        n = ops.shape(x)[0]
        order = keras.random.shuffle(ops.arange(n), seed=self.seed_generator)
        x2, y2, w2 = ops.take(x, order, axis=0), ops.take(y, order, axis=0), ops.take(w, order)
        use_cutmix = self.cutmix > 0 and (
            self.mixup == 0 or keras.random.uniform((), seed=self.seed_generator) < 0.5
        )
        if self.mixup > 0 and self.cutmix > 0:
            return tf.cond(
                use_cutmix,
                lambda: self._cutmix(x, y, w, x2, y2, w2),
                lambda: self._mixup(x, y, w, x2, y2, w2),
            )
        if self.cutmix > 0:
            return self._cutmix(x, y, w, x2, y2, w2)
        return self._mixup(x, y, w, x2, y2, w2)

    def _mixup(self, x: Any, y: Any, w: Any, x2: Any, y2: Any, w2: Any) -> tuple[Any, Any, Any]:
        lam = self._beta(self.mixup)
        return lam * x + (1 - lam) * x2, lam * y + (1 - lam) * y2, lam * w + (1 - lam) * w2

    def _cutmix(self, x: Any, y: Any, w: Any, x2: Any, y2: Any, w2: Any) -> tuple[Any, Any, Any]:
        lam = self._beta(self.cutmix)
        shape = ops.shape(x)
        h, wd = shape[1], shape[2]
        hf, wf = ops.cast(h, "float32"), ops.cast(wd, "float32")
        cut = ops.sqrt(1.0 - lam)
        ch, cw = ops.cast(hf * cut, "int32"), ops.cast(wf * cut, "int32")
        cy = ops.cast(keras.random.uniform((), 0, hf, seed=self.seed_generator), "int32")
        cx = ops.cast(keras.random.uniform((), 0, wf, seed=self.seed_generator), "int32")
        y0, y1 = ops.maximum(cy - ch // 2, 0), ops.minimum(cy + ch // 2, h)
        x0, x1 = ops.maximum(cx - cw // 2, 0), ops.minimum(cx + cw // 2, wd)
        rows = ops.logical_and(ops.arange(h) >= y0, ops.arange(h) < y1)
        cols = ops.logical_and(ops.arange(wd) >= x0, ops.arange(wd) < x1)
        box = ops.logical_and(rows[:, None], cols[None, :])[None, :, :, None]
        mixed = ops.where(box, x2, x)
        # λ from the box actually pasted (clipped at the borders), not the one drawn
        kept = 1.0 - ops.cast((y1 - y0) * (x1 - x0), "float32") / (hf * wf)
        return mixed, kept * y + (1 - kept) * y2, kept * w + (1 - kept) * w2

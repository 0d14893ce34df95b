"""RandomAffine: all of ImageDataGenerator's geometric knobs in one seeded resampling per image."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="acnemodel")
class RandomAffine(keras.layers.Layer):
    """ImageDataGenerator.random_transform on a batch, as one Keras 3 layer.

    Per image: rotation θ ~ U(±rotation_range°), shifts ~ U(±fraction · size), shear ~
    U(±shear_range°), zoom x and y ~ U(1 ± zoom_range) independently, flips with p = ½, then
    brightness × U(low, high) — composed as ImageDataGenerator composes them (rotation · shift ·
    shear · zoom about the centre, flips after) and applied with ONE bilinear resampling.
    The six stacked Random* layers resample four times, which blurs a 32×32 image four times
    and costs ~4× the CPU; see augment.ENGINES.
    """

    def __init__(
        self,
        rotation_range: float = 0.0,
        width_shift_range: float = 0.0,
        height_shift_range: float = 0.0,
        shear_range: float = 0.0,
        zoom_range: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        brightness_range: Any = None,
        fill_mode: str = "nearest",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rotation_range = float(rotation_range)
        self.width_shift_range = float(width_shift_range)
        self.height_shift_range = float(height_shift_range)
        self.shear_range = float(shear_range)
        self.zoom_range = float(zoom_range)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.brightness_range = tuple(brightness_range) if brightness_range else None
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, n: Any, low: float, high: float) -> Any:
        return keras.random.uniform((n,), low, high, seed=self.seed_generator)

    def call(self, images: Any, training: bool = True) -> Any:
        if not training:
            return images
        shape = ops.shape(images)
        n = shape[0]
        h = ops.cast(shape[1], "float32")
        w = ops.cast(shape[2], "float32")
        zero, one = ops.zeros((n,)), ops.ones((n,))

        def sample(limit: float, scale: Any = 1.0) -> Any:
            return self._uniform(n, -limit, limit) * scale if limit else zero

        theta = sample(self.rotation_range, math.pi / 180)
        tx = sample(self.height_shift_range, h)  # ImageDataGenerator: tx moves rows
        ty = sample(self.width_shift_range, w)
        shear = sample(self.shear_range, math.pi / 180)
        if self.zoom_range:
            zx = self._uniform(n, 1 - self.zoom_range, 1 + self.zoom_range)
            zy = self._uniform(n, 1 - self.zoom_range, 1 + self.zoom_range)
        else:
            zx = zy = one

        # (row, col) matrices mapping output pixels to input pixels, as scipy's affine_transform
        # reads ImageDataGenerator's; product: offset · rotation · shift · shear · zoom · reset
        c, s = ops.cos(theta), ops.sin(theta)
        m = _matrix([[c, -s, zero], [s, c, zero]])
        m = ops.matmul(m, _matrix([[one, zero, tx], [zero, one, ty]]))
        m = ops.matmul(m, _matrix([[one, -ops.sin(shear), zero], [zero, ops.cos(shear), zero]]))
        m = ops.matmul(m, _matrix([[zx, zero, zero], [zero, zy, zero]]))
        o_r, o_c = h / 2 - 0.5, w / 2 - 0.5
        m = ops.matmul(_matrix([[one, zero, one * o_r], [zero, one, one * o_c]]), m)
        m = ops.matmul(m, _matrix([[one, zero, -one * o_r], [zero, one, -one * o_c]]))
        # flips come after the geometry in ImageDataGenerator: output p reads affine(F p)
        if self.horizontal_flip:
            f = ops.cast(self._uniform(n, 0.0, 1.0) < 0.5, "float32")
            m = ops.matmul(m, _matrix([[one, zero, zero], [zero, 1 - 2 * f, f * (w - 1)]]))
        if self.vertical_flip:
            f = ops.cast(self._uniform(n, 0.0, 1.0) < 0.5, "float32")
            m = ops.matmul(m, _matrix([[1 - 2 * f, zero, f * (h - 1)], [zero, one, zero]]))

        # to the (x = col, y = row) order of ImageProjectiveTransform: x' = a0 x + a1 y + a2
        transform = ops.stack(
            [m[:, 1, 1], m[:, 1, 0], m[:, 1, 2], m[:, 0, 1], m[:, 0, 0], m[:, 0, 2], zero, zero],
            axis=1,
        )
        out = ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode=self.fill_mode
        )
        if self.brightness_range:
            # ImageDataGenerator scales brightness (PIL's Brightness enhancer): multiply, clip
            low, high = self.brightness_range
            factor = self._uniform(n, low, high)
            out = ops.clip(out * factor[:, None, None, None], 0.0, 1.0)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rotation_range": self.rotation_range,
            "width_shift_range": self.width_shift_range,
            "height_shift_range": self.height_shift_range,
            "shear_range": self.shear_range,
            "zoom_range": self.zoom_range,
            "horizontal_flip": self.horizontal_flip,
            "vertical_flip": self.vertical_flip,
            "brightness_range": self.brightness_range,
            "fill_mode": self.fill_mode,
            "seed": self.seed,
        }


def _matrix(rows: list[list[Any]]) -> Any:
    """Two rows of per-image (n,) entries → (n, 3, 3) with [0, 0, 1] as the third row."""
    n = ops.shape(rows[0][0])[0]
    last = [ops.zeros((n,)), ops.zeros((n,)), ops.ones((n,))]
    return ops.stack([ops.stack(r, axis=1) for r in [*rows, last]], axis=1)

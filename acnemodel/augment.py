"""ImageDataGenerator's augmentation knobs on Keras 3 layers: one fused layer, or six stacked."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from acnemodel.errors import ModelError

if TYPE_CHECKING:
    import keras

FILL_MODES = ("nearest", "constant", "reflect", "wrap")
# affine: acnemodel.affine.RandomAffine, ImageDataGenerator's composition in one resampling
#         (default: ~4× cheaper, keeps training within a few % of un-augmented speed).
# layers: RandomRotation → RandomTranslation → RandomShear → RandomZoom → RandomFlip →
#         RandomBrightness, Keras's stock layers one after another (four resamplings).
ENGINES = ("affine", "layers")


@dataclass(frozen=True)
class AugmentConfig:
    """ImageDataGenerator's knobs, same names and units, plus which engine applies them.

    Defaults are moderate values in the spirit of the Keras blog's small-data example (the paper
    does not give its own); `fill_mode` defaults to `nearest` as ImageDataGenerator does.
    """

    rotation_range: float = 20.0  # degrees, ± uniform
    width_shift_range: float = 0.1  # fraction of the width, ±
    height_shift_range: float = 0.1  # fraction of the height, ±
    shear_range: float = 10.0  # shear angle in degrees, ± (ImageDataGenerator's unit)
    zoom_range: float = 0.1  # zoom in [1 - z, 1 + z], per axis
    horizontal_flip: bool = True
    vertical_flip: bool = False
    brightness_range: tuple[float, float] | None = None  # e.g. (0.8, 1.2)
    fill_mode: str = "nearest"
    engine: str = "affine"

    def __post_init__(self) -> None:
        if self.fill_mode not in FILL_MODES:
            raise ModelError(f"fill mode {self.fill_mode!r} is not one of {', '.join(FILL_MODES)}")
        if self.engine not in ENGINES:
            raise ModelError(f"augment engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if not 0 <= self.shear_range < 45:
            raise ModelError(
                "shear range must be between 0 and 45 degrees "
                "(Keras's RandomShear takes at most a factor of 1 = tan 45°)"
            )
        if not 0 <= self.rotation_range <= 180:
            raise ModelError("rotation range must be between 0 and 180 degrees")
        for name in ("width_shift_range", "height_shift_range", "zoom_range"):
            if not 0 <= getattr(self, name) <= 1:
                raise ModelError(f"{name.replace('_', ' ')} must be between 0 and 1")
        if self.brightness_range is not None:
            low, high = self.brightness_range
            if not 0 <= low <= high <= 2:
                raise ModelError("brightness range must be LOW,HIGH with 0 <= LOW <= HIGH <= 2")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.brightness_range is not None:
            data["brightness_range"] = list(self.brightness_range)
        return data

    def is_identity(self) -> bool:
        return not any(
            (
                self.rotation_range,
                self.width_shift_range,
                self.height_shift_range,
                self.shear_range,
                self.zoom_range,
                self.horizontal_flip,
                self.vertical_flip,
            )
        ) and self.brightness_range in (None, (1.0, 1.0))


def build_augmenter(config: AugmentConfig, seed: int) -> keras.Sequential:
    """The knobs as a seeded Sequential for float images in [0, 1], batched, in tf.data or eager.

    Seeded means: the same seed and the same sequence of calls give the same images.
    """
    import keras

    if config.engine == "affine":
        from acnemodel.affine import RandomAffine

        knobs = {k: v for k, v in config.to_dict().items() if k != "engine"}
        return keras.Sequential([RandomAffine(**knobs, seed=seed)], name="augment")
    return keras.Sequential(keras_layers(config, seed), name="augment")


def keras_layers(config: AugmentConfig, seed: int) -> list[keras.layers.Layer]:
    """The knobs mapped onto Keras's stock Random* layers, each seeded from `seed`."""
    from keras import layers

    fill = config.fill_mode
    stack: list[keras.layers.Layer] = []
    if config.rotation_range:
        # RandomRotation's factor is a fraction of a full turn
        stack.append(
            layers.RandomRotation(config.rotation_range / 360.0, fill_mode=fill, seed=seed + 1)
        )
    if config.width_shift_range or config.height_shift_range:
        stack.append(
            layers.RandomTranslation(
                config.height_shift_range, config.width_shift_range, fill_mode=fill, seed=seed + 2
            )
        )
    if config.shear_range:
        # ImageDataGenerator shears along x only, by an angle; RandomShear takes the matrix
        # entry, which is the tangent of that angle (its random sign matches ± range)
        factor = math.tan(math.radians(config.shear_range))
        stack.append(
            layers.RandomShear(x_factor=factor, y_factor=0.0, fill_mode=fill, seed=seed + 3)
        )
    if config.zoom_range:
        # both factors given: x and y zoom independently, as in ImageDataGenerator
        stack.append(
            layers.RandomZoom(config.zoom_range, config.zoom_range, fill_mode=fill, seed=seed + 4)
        )
    flip = {
        (True, False): "horizontal",
        (False, True): "vertical",
        (True, True): "horizontal_and_vertical",
    }.get((config.horizontal_flip, config.vertical_flip))
    if flip:
        stack.append(layers.RandomFlip(flip, seed=seed + 5))
    if config.brightness_range is not None and config.brightness_range != (1.0, 1.0):
        # ImageDataGenerator multiplies brightness; RandomBrightness adds a delta. On [0, 1]
        # images, factor (low - 1, high - 1) gives the same shift for a mid-grey pixel.
        low, high = config.brightness_range
        stack.append(
            layers.RandomBrightness((low - 1.0, high - 1.0), value_range=(0.0, 1.0), seed=seed + 6)
        )
    return stack


def augment_where(augmenter: keras.Sequential, images: Any, allowed: Any) -> Any:
    """Augment a batch, keeping the images whose licence forbids derivatives untouched."""
    import tensorflow as tf

    augmented = augmenter(images, training=True)
    # clip: bilinear fill and brightness may overshoot [0, 1] by rounding
    augmented = tf.clip_by_value(augmented, 0.0, 1.0)
    return tf.where(tf.reshape(allowed, (-1, 1, 1, 1)), augmented, images)
